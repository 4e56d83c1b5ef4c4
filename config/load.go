package config

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// VarError is one problem with one environment variable. [Load] and [Config.Validate] return
// these joined with [errors.Join]; find one with [errors.As].
type VarError struct {
	Var string // the environment variable, e.g. "BRIDGE_POLL_JITTER"
	Err error  // what is wrong with its value
}

// Error returns "VAR: problem".
func (e *VarError) Error() string { return e.Var + ": " + e.Err.Error() }

// Unwrap returns the problem, so errors.Is sees sentinels such as [ErrRequired].
func (e *VarError) Unwrap() error { return e.Err }

// ErrRequired is wrapped by the [VarError] of a variable that must be set but is empty.
var ErrRequired = errors.New("required but not set")

// neverSet is an environment variable name no environment can hold: a name with '=' in it
// can be neither set nor found. Processing a field under this name makes envconfig apply
// the field's default tag, which is how an empty variable comes to mean its default.
const neverSet = "UNSET=BY_CONSTRUCTION"

// Load reads the configuration from the environment and validates it. Every variable is
// parsed on its own, so the error lists every unparsable variable and every failed check
// ([Config.Validate]) at once, each naming its variable (see [VarError]). A variable that is
// set but empty takes its default. Load does not require REDUCTO_API_KEY; see
// [Config.RequireAPIKey].
func Load() (*Config, error) {
	c := new(Config)
	errs := c.process(os.LookupEnv)
	errs = append(errs, c.check()...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// Defaults returns the configuration with every variable at its default, ignoring the
// environment: the demo's starting point, and the table in docs/contract.md section 5 and the README.
func Defaults() *Config {
	c := new(Config)
	if errs := c.process(func(string) (string, bool) { return "", false }); len(errs) > 0 {
		panic(fmt.Sprintf("config: bad default tag: %v", errors.Join(errs...)))
	}
	return c
}

// process fills c field by field. envconfig.Process stops at the first variable it cannot
// parse, so each field is given to envconfig as a one-field struct with the same tags, and
// the errors are collected. A field whose variable is empty or unparsable gets its default,
// so that [Config.check] does not report a second, misleading problem about it.
func (c *Config) process(lookup func(string) (string, bool)) []error {
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	var errs []error
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("envconfig")
		if name == "" {
			continue
		}
		raw, ok := lookup(name)
		key := name
		if !ok || raw == "" {
			key = neverSet
		}
		val, err := processField(f, key)
		if err != nil {
			errs = append(errs, &VarError{Var: name, Err: parseError(f.Type, raw)})
			if val, err = processField(f, neverSet); err != nil {
				errs = append(errs, &VarError{Var: name, Err: fmt.Errorf("bad default %q: %w", f.Tag.Get("default"), err)})
				continue
			}
		}
		v.Field(i).Set(val)
	}
	return errs
}

// processField parses the variable key into a value of f's type with envconfig, through a
// one-field struct carrying f's default tag.
func processField(f reflect.StructField, key string) (reflect.Value, error) {
	tag := fmt.Sprintf("envconfig:%q default:%q", key, f.Tag.Get("default"))
	st := reflect.StructOf([]reflect.StructField{{Name: "V", Type: f.Type, Tag: reflect.StructTag(tag)}})
	p := reflect.New(st)
	if err := envconfig.Process("", p.Interface()); err != nil {
		return reflect.Value{}, err
	}
	return p.Elem().Field(0), nil
}

// parseError says what raw should have been. It replaces envconfig's own message, which
// names the Go field and type rather than what an operator can act on.
func parseError(t reflect.Type, raw string) error {
	switch t {
	case reflect.TypeFor[time.Duration]():
		return fmt.Errorf("invalid duration %q (want a number with a unit, such as 500ms, 2s or 1h30m)", raw)
	case reflect.TypeFor[slog.Level]():
		return fmt.Errorf("unknown log level %q (want debug, info, warn or error)", raw)
	case reflect.TypeFor[Secret]():
		return errors.New("invalid value") // never echo a secret
	}
	switch t.Kind() {
	case reflect.Float32, reflect.Float64:
		return fmt.Errorf("invalid number %q", raw)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return fmt.Errorf("invalid integer %q", raw)
	}
	return fmt.Errorf("invalid value %q", raw)
}
