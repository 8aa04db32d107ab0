package export

import (
	"fmt"
	"path/filepath"
	"strings"
)

// ParseImages reads images given as NAME=PATH (goldsync serve --image):
// each PATH made absolute. Names are checked by New.
func ParseImages(specs []string) ([]Image, error) {
	var out []Image
	for _, spec := range specs {
		name, path, ok := strings.Cut(spec, "=")
		if !ok || name == "" || path == "" {
			return nil, fmt.Errorf("image %q: want NAME=PATH", spec)
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, fmt.Errorf("image %q: %w", spec, err)
		}
		out = append(out, Image{Name: name, Root: abs})
	}
	return out, nil
}
