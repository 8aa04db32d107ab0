package imaging_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/goldsync/goldsync/imaging"
)

// Mirror a local golden tree into an image directory, then show that a
// second run has nothing to do.
func ExampleSync() {
	base, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(base)
	golden := filepath.Join(base, "golden")
	os.MkdirAll(filepath.Join(golden, "etc"), 0o755)
	os.WriteFile(filepath.Join(golden, "etc", "hostname"), []byte("node004\n"), 0o644)
	old := time.Date(2009, 4, 1, 0, 0, 0, 0, time.UTC)
	os.Chtimes(golden, old, old)

	ctx := context.Background()
	for run := 1; run <= 2; run++ {
		src, err := imaging.OpenDirSource(golden, imaging.DirSourceOptions{CacheFile: filepath.Join(base, "hashcache")})
		if err != nil {
			fmt.Println(err)
			return
		}
		res, err := imaging.Sync(ctx, src, filepath.Join(base, "image"), imaging.Options{
			Excludes: []string{"/proc/*", "/sys/*"},
			Itemize:  func(c imaging.Change) { fmt.Println(" ", c) },
		})
		src.Close()
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("run %d: %d actions, %d files written\n", run, res.Plan.Len(), res.Files)
	}
	// Output:
	//   .d..t...... ./
	//   cd+++++++++ etc/
	//   >f+++++++++ etc/hostname
	// run 1: 4 actions, 1 files written
	// run 2: 0 actions, 0 files written
}
