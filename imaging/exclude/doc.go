// Package exclude decides which paths of a tree a sync leaves out, with
// rsync's semantics for the patterns admins already write in --exclude,
// --filter '- PAT' / '+ PAT' and exclude files, e.g. the seed procedure's
//
//	rsync -a --exclude='/proc/*' --exclude='/sys/*' node004:/ /diskless/.../root/
//
// It owns pattern parsing and matching and nothing else: it reads no files
// (a config loader hands it the lines), walks no trees and touches no disk.
// The walker asks Excluded about each path top-down and does not descend
// into an excluded directory.
//
// # Rules
//
// Each pattern given to New is one rule:
//
//	PAT     exclude PAT
//	- PAT   exclude PAT (exactly one space after the '-')
//	+ PAT   include PAT
//	!       forget every rule before this one
//
// For each path the rules are tried in order and the first that matches
// decides; a path no rule matches is kept. Paths are tree paths (package
// tree): relative to the transfer root, slash-separated, the root being "."
// which is never excluded. Names are bytes; nothing assumes UTF-8.
//
// Rules judge one path each, like rsync's: an excluded directory hides
// everything beneath it, whatever later rules say. So
//
//	New([]string{"+ /var/cache/yum/keep", "- /var/cache/**"})
//
// transfers var/cache itself but not var/cache/yum/keep, because
// var/cache/yum matches the second rule and is never entered. Add
// "+ /var/cache/yum/" before the exclude to reach it (then everything
// else under var/cache/yum is excluded by "/var/cache/**").
//
// # Patterns
//
// The syntax and matching are rsync's (see rsync(1), INCLUDE/EXCLUDE
// PATTERN RULES):
//
//   - A trailing '/' makes the rule match directories only ("tmp/"); the
//     '/' is then dropped. A symlink to a directory is not a directory.
//   - A leading '/' anchors the pattern at the transfer root ("/proc/*"
//     matches proc/1 but not a/proc/1).
//   - A pattern with no '/' (besides a trailing one) and no "**" is matched
//     against the last component only: "*.rpmnew" matches etc/x.rpmnew at
//     any depth, "lost+found" any entry of that name.
//   - An unanchored pattern with an inner '/' and no "**" is matched
//     against the path's last components: "cache/yum" matches var/cache/yum
//     and cache/yum, not var/cache/yum/x.
//   - A pattern with "**" is matched against the whole path: starting at
//     the path's start or after any '/' when unanchored ("var/**" matches
//     a/var/x), at the path's start when anchored or when it starts with
//     "**" ("**/tmp" matches tmp and a/b/tmp).
//   - '*' matches any bytes but '/', two or more '*' match any bytes,
//     '?' one byte but '/', "[...]" one byte but '/' from a class: '!' or
//     '^' first negates, "a-z" is a range, "[:alpha:]" and the other POSIX
//     names use the C locale (bytes >= 0x80 are in none of them), a ']'
//     right after '[' or "[!" is literal.
//   - A backslash makes the next byte literal, but only in a pattern that
//     holds a wildcard ('*', '?' or '['); otherwise it is an ordinary byte,
//     as in rsync.
//   - "/var/cache/**" matches everything beneath var/cache but not the
//     directory itself; a trailing "/***" matches both ("dir/***").
//
// # Differences from rsync
//
// Checked against stock rsync by the oracle tests; what remains different:
//
//   - A pattern rsync would accept but could never match is an error here:
//     an unterminated '[' class, an unknown [:name:], a trailing backslash.
//     So is an empty pattern (rsync ignores an empty --exclude), one
//     containing NUL, and one longer than PATH_MAX.
//   - Only "- " and "+ " prefixes and "!" are understood. The long names
//     (exclude, include, ...), modifiers ("-/", "-!", "-s", "-r", "-p",
//     "-x", "-C"), hide/show/protect/risk rules, merge files (". FILE"),
//     per-directory merge files (": .rsync-filter", -F) and --cvs-exclude
//     are not: such a line is read as a pattern (as rsync's --exclude reads
//     it), not as a rule.
//   - No --delete-excluded or receiver-side rules: the Matcher decides what
//     is transferred; what a mirror deletes is the planner's business.
//   - No comments or blank lines: rsync skips lines starting with '#' or
//     ';' and empty ones when it reads an exclude file; here the caller
//     reading the file does that, and every string given to New is a rule.
//   - Paths are tree paths, always relative to the transfer root, as
//     rsync's are for "rsync -a SRC/ DST/".
package exclude
