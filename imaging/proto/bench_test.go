package proto

import (
	"context"
	"testing"

	"github.com/goldsync/goldsync/imaging"
)

type discardSink struct{}

func (discardSink) Data(int64, []byte) error         { return nil }
func (discardSink) Reuse(int64, int64) error         { return nil }
func (discardSink) Finish(imaging.FetchResult) error { return nil }
func (discardSink) Abort(error)                      {}

// BenchmarkFetch streams a 16 MiB file and 256 small files over an
// in-memory pipe per iteration.
func BenchmarkFetch(b *testing.B) {
	src := newFakeSource()
	big := pattern(16<<20, 9)
	src.files["bench/big"] = &fakeFile{content: big}
	reqs := []*imaging.FetchRequest{{Entry: mkfile("bench/big", big)}}
	small := pattern(2000, 1)
	total := int64(len(big))
	for i := range 256 {
		p := "bench/s" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		src.files[p] = &fakeFile{content: small}
		reqs = append(reqs, &imaging.FetchRequest{Entry: mkfile(p, small)})
		total += int64(len(small))
	}
	cli, srv := Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Serve(context.Background(), srv, func(context.Context, string) (imaging.Source, error) { return src, nil }, ServeOptions{})
	}()
	c, err := NewClient(context.Background(), cli, "/", ClientOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(total)
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Fetch(context.Background(), reqs, func(*imaging.FetchRequest) (imaging.ContentSink, error) { return discardSink{}, nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	c.Close()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
