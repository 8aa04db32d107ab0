package imaging_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/goldsync/goldsync/imaging"
)

// Pull a golden tree twice with generations on, a package update in
// between, then roll the image back to the first generation without the
// golden node, and list the generations.
func ExampleRollback() {
	base, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(base)
	golden, image := filepath.Join(base, "golden"), filepath.Join(base, "image")
	os.MkdirAll(filepath.Join(golden, "usr/bin"), 0o755)
	os.WriteFile(filepath.Join(golden, "usr/bin/tool"), []byte("tool 1.0\n"), 0o755)

	ctx := context.Background()
	pull := func() int64 {
		src, err := imaging.OpenDirSource(golden, imaging.DirSourceOptions{})
		if err != nil {
			panic(err)
		}
		defer src.Close()
		res, err := imaging.Sync(ctx, src, image, imaging.Options{
			Generations: &imaging.GenerationPolicy{Keep: 10, Source: "node004:/"},
		})
		if err != nil {
			panic(err)
		}
		return res.Generation
	}
	first := pull()
	os.WriteFile(filepath.Join(golden, "usr/bin/tool.new"), []byte("tool 2.0, broken\n"), 0o755)
	os.Rename(filepath.Join(golden, "usr/bin/tool.new"), filepath.Join(golden, "usr/bin/tool"))
	pull()
	os.RemoveAll(golden) // not needed to roll back

	res, err := imaging.Rollback(ctx, image, first, imaging.RollbackOptions{Options: imaging.Options{
		Generations: &imaging.GenerationPolicy{Keep: 10},
		Itemize:     func(c imaging.Change) { fmt.Println(" ", c) },
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	b, _ := os.ReadFile(filepath.Join(image, "usr/bin/tool"))
	fmt.Printf("rolled back to %d, recorded as %d: usr/bin/tool is %q\n", first, res.Generation, b)
	gens, _ := imaging.ListGenerations(imaging.DefaultStateDir(image))
	for _, g := range gens {
		fmt.Printf("%d %s +%d ~%d -%d\n", g.ID, g.Source, g.Created, g.Updated, g.Deleted)
	}
	// Output:
	//   .d..t...... usr/bin/
	//   >fcst...... usr/bin/tool
	// rolled back to 1, recorded as 3: usr/bin/tool is "tool 1.0\n"
	// 1 node004:/ +3 ~0 -0
	// 2 node004:/ +0 ~1 -0
	// 3 rollback to 1 +0 ~1 -0
}
