package main

import (
	"fmt"
	"io"

	"github.com/reducto-bridge/reducto-bridge/config"
)

// printEnv is 'bridge env': every variable with its default and meaning.
func printEnv(w io.Writer) error {
	fmt.Fprintln(w, "reducto-bridge reads its configuration from these environment variables:")
	fmt.Fprintln(w)
	return config.Usage(w)
}
