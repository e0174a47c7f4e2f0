package config

import (
	"reflect"
	"time"
)

// Var describes one environment variable.
type Var struct {
	Name     string
	Type     string
	Default  string
	Required bool
	Desc     string
	// Secret: skiff check shows the value masked (secrets.go).
	Secret bool
}

// Vars lists the variables of spec (a pointer to one of this package's
// structs) under prefix, e.g. "SKIFF_" or "SKIFF_KAFKA_".
func Vars(prefix string, spec any) []Var {
	t := reflect.TypeOf(spec).Elem()
	var vs []Var
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Tag.Get("ignored") == "true" || !f.IsExported() {
			continue
		}
		if embedded(f) {
			vs = append(vs, Vars(prefix, reflect.New(f.Type).Interface())...)
			continue
		}
		vs = append(vs, Var{
			Name:     prefix + f.Tag.Get("envconfig"),
			Type:     typeName(f.Type),
			Default:  f.Tag.Get("default"),
			Required: f.Tag.Get("required") == "true",
			Desc:     f.Tag.Get("desc"),
			Secret:   f.Tag.Get("secret") == "true" || f.Tag.Get("redact") == "headers",
		})
	}
	return vs
}

// embedded reports whether f is a struct of settings shared by several
// sinks (HTTPClient), whose variables read as the embedding struct's own.
func embedded(f reflect.StructField) bool {
	return f.Anonymous && f.Type.Kind() == reflect.Struct
}

// Reference lists every variable skiff knows: the global ones, then each
// sink type's under its default name (SKIFF_HTTP_URL, …).
func Reference() []Var {
	vs := Vars(Prefix+"_", &Config{})
	for _, typ := range SinkTypes() {
		vs = append(vs, Vars(Sink{Name: typ}.Prefix(), sinkTypes[typ]())...)
	}
	return vs
}

var (
	durationType = reflect.TypeOf(time.Duration(0))
	sizeType     = reflect.TypeOf(Size(0))
)

func typeName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "duration"
	case t == sizeType:
		return "size"
	case t.Kind() == reflect.Slice:
		return "list"
	case t.Kind() == reflect.Map:
		return "key=value list"
	case t.Kind() == reflect.Bool:
		return "bool"
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
		return "integer"
	}
	return "string"
}
