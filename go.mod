module github.com/goldsync/goldsync

go 1.26.0

require (
	github.com/cespare/xxhash/v2 v2.3.0
	github.com/gokrazy/rsync v0.2.2
	github.com/google/go-cmp v0.7.0
	github.com/pelletier/go-toml/v2 v2.4.3
	github.com/pkg/sftp v1.13.12
	github.com/spf13/cobra v1.10.2
	github.com/spf13/pflag v1.0.9
	golang.org/x/sync v0.25.0
	golang.org/x/sys v0.50.0
)

require (
	github.com/google/renameio/v2 v2.0.0 // indirect
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/kr/fs v0.1.0 // indirect
	github.com/mmcloughlin/md4 v0.1.2 // indirect
	golang.org/x/crypto v0.54.0 // indirect
)
