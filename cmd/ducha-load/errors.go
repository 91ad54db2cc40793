package main

import "errors"

var (
	// ErrConfig: the flags do not describe a runnable load.
	ErrConfig = errors.New("ducha-load: bad configuration")
	// ErrServer: the server could not be built, started, reached or stopped.
	ErrServer = errors.New("ducha-load: server")
	// ErrJoin: a simulated participant could not join or publish.
	ErrJoin = errors.New("ducha-load: join")
	// ErrNoMedia: media did not reach every receiver before the settle timeout.
	ErrNoMedia = errors.New("ducha-load: media did not reach every receiver")
)
