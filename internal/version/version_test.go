package version

import (
	"runtime/debug"
	"testing"
)

// buildInfo is build info with the settings of kv (key, value, ...).
func buildInfo(kv ...string) *debug.BuildInfo {
	info := &debug.BuildInfo{}
	for i := 0; i < len(kv); i += 2 {
		info.Settings = append(info.Settings, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
	}
	return info
}

func TestDescribe(t *testing.T) {
	build := func() string { return Version + "+0123456789ab" }
	const rev = "0c86dc78ef17f45b87e5822c89819007c9e7531a"
	tests := []struct {
		name string
		info *debug.BuildInfo
		want string
	}{
		{name: "no build info", info: nil, want: Version + "+0123456789ab (no commit stamp: executable hash)"},
		{name: "no vcs stamp", info: buildInfo("-buildmode", "exe"), want: Version + "+0123456789ab (no commit stamp: executable hash)"},
		{name: "clean", info: buildInfo("vcs", "git", "vcs.revision", rev, "vcs.modified", "false"), want: Version + " (commit " + rev + ")"},
		{name: "modified", info: buildInfo("vcs.revision", rev, "vcs.modified", "true"), want: Version + " (commit " + rev + ", modified)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := describe(tt.info, build); got != tt.want {
				t.Errorf("describe = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStamp(t *testing.T) {
	const rev = "0c86dc78ef17f45b87e5822c89819007c9e7531a"
	tests := []struct {
		name string
		info *debug.BuildInfo
		want string
	}{
		{name: "no build info", info: nil, want: Version + "+dev"},
		{name: "no vcs stamp", info: buildInfo("-buildmode", "exe"), want: Version + "+dev"},
		{name: "clean", info: buildInfo("vcs.revision", rev, "vcs.modified", "false"), want: Version + "+0c86dc78ef17"},
		{name: "modified", info: buildInfo("vcs.revision", rev, "vcs.modified", "true"), want: Version + "+0c86dc78ef17-modified"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := stamp(tt.info); got != tt.want {
				t.Errorf("stamp = %q, want %q", got, tt.want)
			}
		})
	}
}
