package config

import (
	"io"
	"text/tabwriter"

	"github.com/kelseyhightower/envconfig"
)

// usageFormat is the envconfig usage template: one aligned row per variable, "-" for no
// default. It reads only the tags, never a value.
const usageFormat = "NAME\tDEFAULT\tMEANING\n" +
	"{{range .}}{{usage_key .}}\t{{with usage_default .}}{{.}}{{else}}-{{end}}\t{{usage_description .}}\n{{end}}"

// Usage writes the table of every variable with its default and meaning (for `bridge env`),
// in columns NAME, DEFAULT and MEANING. It is built from the struct tags of an empty
// [Config], so it never shows a value from the environment, secrets included.
func Usage(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if err := envconfig.Usagef("", &Config{}, tw, usageFormat); err != nil {
		return err
	}
	return tw.Flush()
}
