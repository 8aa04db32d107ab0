package cluster

import (
	"context"

	"github.com/goldsync/goldsync/snapshot"
)

// BuildRequest is the job of goldsync snapshot build and node add: the
// snapshots of the nodes from the image, with the lists of paths the
// request names. Its errors are *StepError: StepImage when the image
// cannot be copied from (checked before anything is written), StepLists
// for the lists, StepSnapshots for snapshot.Build.
type BuildRequest struct {
	// BuildOptions are the build's; their Items are the lists'.
	snapshot.BuildOptions
	// Files, Rwtabs and Statetabs name the lists (snapshot.LoadOptions);
	// without Files, the snapshot dir's files and files.custom.
	Files, Rwtabs, Statetabs []string
	// Notice is told what loading the lists did or found that is not an
	// error (snapshot.LoadOptions.Notice).
	Notice func(msg string)
}

// Build checks the image, reads the lists and builds the snapshots. The
// result is nil when the build did not start.
func (r BuildRequest) Build(ctx context.Context) (*snapshot.BuildResult, error) {
	if err := snapshot.CheckImage(r.ImageRoot); err != nil {
		return nil, stepErr(StepImage, err)
	}
	items, err := snapshot.LoadLists(snapshot.LoadOptions{SnapshotDir: r.SnapshotDir, Files: r.Files, Rwtabs: r.Rwtabs,
		Statetabs: r.Statetabs, DryRun: r.DryRun, Notice: r.Notice})
	if err != nil {
		return nil, stepErr(StepLists, err)
	}
	r.Items = items
	res, err := snapshot.Build(ctx, r.BuildOptions)
	return res, stepErr(StepSnapshots, err)
}
