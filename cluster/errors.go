package cluster

import (
	"errors"
	"fmt"
)

// Step names the part of a run an error comes from.
type Step string

// The steps of a run, of Status and of Verify, and of the requests of
// the commands (PullRequest, BuildRequest, ServeRequest, Prune).
const (
	StepConfig      Step = "config"      // the config names no such image, or none
	StepNodes       Step = "nodes"       // the nodes file: unreadable (fs errors) or wrong (snapshot.ErrNodes, two OSes claiming a node)
	StepLock        Step = "lock"        // the image's run lock (imaging.ErrLocked when held)
	StepConnect     Step = "connect"     // starting the source (remote.Open)
	StepHandshake   Step = "handshake"   // PullRequest.Receive: the pushing agent's handshake
	StepPull        Step = "pull"        // imaging.Sync
	StepRollback    Step = "rollback"    // imaging.Rollback
	StepLists       Step = "lists"       // the snapshot lists (snapshot.ErrLists when wrong)
	StepSnapshots   Step = "snapshots"   // snapshot.Build
	StepNetboot     Step = "netboot"     // netboot.AddOS: the OS's kernel and record
	StepBootFiles   Step = "bootfiles"   // the TFTP tree and the nodes' boot files
	StepReplica     Step = "replica"     // updating a replica image server (ErrReplica)
	StepMetrics     Step = "metrics"     // the metrics file
	StepGenerations Step = "generations" // an image's generations: listing or pruning them
	StepManifest    Step = "manifest"    // Verify: the image's manifest (ErrNoManifest when missing)
	StepImage       Step = "image"       // Verify: opening or walking the image; PullRequest: checking DEST
	StepExcludes    Step = "excludes"    // Verify: the exclude patterns
	StepListen      Step = "listen"      // ServeRequest.Serve: the rsync listener
	StepServe       Step = "serve"       // ServeRequest.Serve: serving (export.ErrConfinement when its self-test failed)
)

// StepError is an error of one step; its message is Err's.
type StepError struct {
	Step Step
	Err  error
}

func (e *StepError) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e *StepError) Unwrap() error { return e.Err }

func stepErr(s Step, err error) error {
	if err == nil {
		return nil
	}
	return &StepError{Step: s, Err: err}
}

// StepOf returns the step of the first StepError in err's tree, or "".
func StepOf(err error) Step {
	var se *StepError
	if errors.As(err, &se) {
		return se.Step
	}
	return ""
}

var (
	// ErrNoImage is wrapped when a name is not an image of the config,
	// or the config has none.
	ErrNoImage = errors.New("no such image")
	// ErrDeadline is the cause of a pull's context when Options.Deadline
	// passed; the pull's error wraps it.
	ErrDeadline = errors.New("deadline passed")
	// ErrNoManifest is wrapped by Verify when the state dir holds no
	// manifest (the image was never synced by goldsync).
	ErrNoManifest = errors.New("no manifest")
)

// noImage is a StepConfig error wrapping ErrNoImage, with the message
// format gives.
func noImage(format string, a ...any) error {
	return &StepError{Step: StepConfig, Err: kindError{ErrNoImage, fmt.Errorf(format, a...)}}
}

// kindError is err, also matching kind with errors.Is; its message is
// err's alone.
type kindError struct{ kind, err error }

func (e kindError) Error() string   { return e.err.Error() }
func (e kindError) Unwrap() []error { return []error{e.kind, e.err} }
