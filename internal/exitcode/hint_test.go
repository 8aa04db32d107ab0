package exitcode

import "testing"

// TestCommandFirstHint: a flag or an rsync line before the command gets a
// corrected line; a command given later is moved first rather than put
// after "pull" (newcomer trial: "goldsync -n pull SRC DEST" was told to
// run "goldsync pull -n pull SRC DEST").
func TestCommandFirstHint(t *testing.T) {
	cmds := []string{"pull", "status", "sync", "verify"}
	tests := []struct {
		args []string
		msg  string
		want string
	}{
		{[]string{"-n", "pull", "/s", "/d"}, `unknown command "/s" for "goldsync"`,
			"the command comes first, as in: goldsync pull -n /s /d (see goldsync pull --help)"},
		{[]string{"-c", "F", "status", "rhel5"}, "unknown shorthand flag: 'c' in -c",
			"the command comes first, as in: goldsync status -c F rhel5 (see goldsync status --help)"},
		{[]string{"-aHAXS", "golden:/", "/img/"}, "unknown shorthand flag: 'a' in -aHAXS",
			"the command comes first, as in: goldsync pull -aHAXS golden:/ /img/ (see goldsync --help)"},
		{[]string{"pull", "-Q", "/s", "/d"}, "unknown shorthand flag: 'Q' in -Q", ""},
		{[]string{"statsu"}, `unknown command "statsu" for "goldsync"`, ""},
		{[]string{"-n", "pull"}, "some other error", ""},
		{[]string{"--bogus"}, "unknown flag: --bogus", ""},
		{[]string{"-v", "--bogus", "x"}, "unknown flag: --bogus", ""},
		{[]string{"/s/", "/d/"}, `unknown command "/s/" for "goldsync"`,
			"the command comes first, as in: goldsync pull /s/ /d/ (see goldsync --help)"},
	}
	for _, tt := range tests {
		if got := CommandFirstHint(tt.args, tt.msg, cmds); got != tt.want {
			t.Errorf("CommandFirstHint(%q, %q) = %q, want %q", tt.args, tt.msg, got, tt.want)
		}
	}
}

// TestClosestFirst: cobra lists its suggestions in command order, so
// `goldsync pul` was offered "pin" before "pull" (newcomer trial).
func TestClosestFirst(t *testing.T) {
	tests := []struct{ msg, want string }{
		{"unknown command \"pul\" for \"goldsync\"\n\nDid you mean this?\n\tpin\n\tpull\n",
			"unknown command \"pul\" for \"goldsync\"\n\nDid you mean this?\n\tpull\n\tpin\n"},
		{"unknown command \"stat\" for \"goldsync\"\n\nDid you mean this?\n\tsync\n\tstatus\n",
			"unknown command \"stat\" for \"goldsync\"\n\nDid you mean this?\n\tstatus\n\tsync\n"},
		{"unknown command \"x\" for \"goldsync\"", "unknown command \"x\" for \"goldsync\""},
		{"some other error\n\nDid you mean this?\n\tb\n\ta\n", "some other error\n\nDid you mean this?\n\tb\n\ta\n"},
	}
	for _, tt := range tests {
		if got := closestFirst(tt.msg); got != tt.want {
			t.Errorf("closestFirst(%q) = %q, want %q", tt.msg, got, tt.want)
		}
	}
}
