// Package sshtest starts a real OpenSSH sshd on loopback for integration
// tests: the transports that run the agent over ssh, upload it over SFTP or
// drive stock rsync through `-e ssh` are tested against the real thing, not a
// fake.
//
// Each Server lives in its own temporary directory with its own host key,
// client key, authorized_keys, known_hosts, sshd_config and log, listens on a
// free port of 127.0.0.1, and is stopped when the test ends. Clients reach it
// with the argv from Server.SSHArgs (or Server.RshCommand for rsync's -e),
// which checks the host key strictly and never reads the user's ssh
// configuration, keys or agent. Options can force a command or make the login
// shell print noise on stdout, as a chatty .bashrc on a golden node would.
//
// The package owns only the harness: starting, probing and stopping sshd. It
// does not know the goldsync protocol, and it never talks to a terminal;
// failures are reported through the testing.TB it is given. It needs
// /usr/sbin/sshd, ssh and ssh-keygen (scripts/ci-deps.sh installs them) and
// skips the test when they are missing.
package sshtest
