package cluster

import (
	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/export"
)

// ServeOptions returns the rsync export's options of the config: its
// images (the named ones, or all; see SelectImages) as modules, and its
// [export] settings, zero ones left to the export's defaults. Errors are
// SelectImages'.
func ServeOptions(cfg *config.Config, names []string) (export.Options, error) {
	imgs, err := SelectImages(cfg, names)
	if err != nil {
		return export.Options{}, err
	}
	o := export.Options{Allow: cfg.Export.Allow, ServeRootOnly: cfg.Export.ServeRootOnly}
	for _, img := range imgs {
		o.Images = append(o.Images, export.Image{Name: img.Name, Root: img.Root})
	}
	if cfg.Export.MaxConnections > 0 {
		o.MaxConnections = cfg.Export.MaxConnections
	}
	if cfg.Export.MaxPerIP > 0 {
		o.MaxPerIP = cfg.Export.MaxPerIP
	}
	return o, nil
}
