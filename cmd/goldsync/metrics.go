package main

import (
	"time"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/imaging"
)

// writeMetrics writes a pull's Prometheus metrics (cluster.WriteMetrics).
func writeMetrics(path, image string, res *imaging.Result, runErr error) error {
	return cluster.WriteMetrics(path, []cluster.ImageMetrics{{Image: image, Result: res, Err: runErr}}, time.Now())
}
