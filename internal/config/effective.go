package config

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/skiff-dev/skiff/internal/redact"
)

// Setting is one variable with the value in effect.
type Setting struct {
	Name  string
	Value string
}

// Effective lists every variable in effect for c, secrets masked (see
// secrets.go), in the order of the reference: global settings first, then
// each sink's.
func Effective(c *Config) []Setting {
	sec := Secrets(c)
	out := settings(Prefix+"_", c, sec)
	for _, s := range c.SinkList {
		if spec := s.Settings(); spec != nil {
			out = append(out, settings(s.Prefix(), spec, sec)...)
		}
	}
	return out
}

func settings(prefix string, spec any, sec *redact.Secrets) []Setting {
	v := reflect.ValueOf(spec).Elem()
	t := v.Type()
	var out []Setting
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Tag.Get("ignored") == "true" || !f.IsExported() {
			continue
		}
		if embedded(f) {
			out = append(out, settings(prefix, v.Field(i).Addr().Interface(), sec)...)
			continue
		}
		var val string
		switch fv := v.Field(i); {
		case f.Tag.Get("secret") == "true":
			if val = render(fv); val != "" {
				val = redact.Mask
			}
		case f.Tag.Get("redact") == "url":
			parts := strs(fv)
			for i, p := range parts {
				parts[i] = redact.URL(p)
			}
			val = strings.Join(parts, ",")
		case f.Tag.Get("redact") == "headers":
			parts := strs(fv)
			for i, h := range parts {
				name, _, _ := strings.Cut(h, "=")
				parts[i] = strings.TrimSpace(name) + "=" + redact.Mask
			}
			val = strings.Join(parts, ",")
		default:
			val = render(fv)
		}
		out = append(out, Setting{Name: prefix + f.Tag.Get("envconfig"), Value: sec.String(val)})
	}
	return out
}

func render(v reflect.Value) string {
	switch v.Kind() {
	case reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = fmt.Sprint(v.Index(i).Interface())
		}
		return strings.Join(parts, ",")
	case reflect.Map:
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + v.MapIndex(reflect.ValueOf(k)).String()
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v.Interface())
}

// MarkdownTable renders the variable reference as the Markdown table that
// README carries (a test keeps the two identical).
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString("| Variable | Type | Default | Description |\n|---|---|---|---|\n")
	for _, v := range Reference() {
		def := v.Default
		if def != "" {
			def = "`" + def + "`"
		}
		desc := v.Desc
		if v.Required {
			desc = "**required**: " + strings.TrimPrefix(desc, "required: ")
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", v.Name, v.Type, def, strings.ReplaceAll(desc, "|", "\\|"))
	}
	return b.String()
}
