package main

import (
	"errors"
	"syscall"
	"time"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/imaging"
)

func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// writeMetrics writes a pull's Prometheus metrics (cluster.WriteMetrics).
func writeMetrics(path, image string, res *imaging.Result, runErr error) error {
	return cluster.WriteMetrics(path, []cluster.ImageMetrics{{Image: image, Result: res, Err: runErr}}, time.Now())
}
