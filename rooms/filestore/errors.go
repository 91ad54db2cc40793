package filestore

import "errors"

var (
	// ErrLocked means another process (normally the running ducha server)
	// holds the data directory. The message is shown to operators as is.
	ErrLocked = errors.New("数据目录正被运行中的 ducha 服务使用 / the data directory is in use by a running ducha server")
	// ErrCorrupt means the saved state is damaged in a way a crash does not
	// explain; the wrapping message names the file and line.
	ErrCorrupt = errors.New("filestore: saved state is damaged")
	// ErrJournal means a journal write or fsync failed; the store accepts no
	// more changes.
	ErrJournal = errors.New("filestore: journal write failed")
)
