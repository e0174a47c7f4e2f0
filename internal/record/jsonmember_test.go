package record

import "testing"

func TestJSONMember(t *testing.T) {
	obj := ` { "a" : 1, "s":"x\"y", "o":{"a":2,"b":[1,{"c":"}"}]}, "e\u0061":3 , "n":null,"last":true}`
	tests := map[string]struct {
		obj, name string
		want      string
		ok        bool
	}{
		"number":              {obj, "a", "1", true},
		"string with quotes":  {obj, "s", `"x\"y"`, true},
		"object":              {obj, "o", `{"a":2,"b":[1,{"c":"}"}]}`, true},
		"null":                {obj, "n", "null", true},
		"last member":         {obj, "last", "true", true},
		"nested not searched": {obj, "b", "", false},
		"escaped key":         {obj, "ea", "", false},
		"absent":              {obj, "z", "", false},
		"not an object":       {`[1]`, "a", "", false},
		"empty":               {``, "a", "", false},
		"truncated key":       {`{"a`, "a", "", false},
		"no colon":            {`{"a" 1}`, "a", "", false},
		"no value":            {`{"a":`, "a", "", false},
		"no comma":            {`{"b":1 "a":2}`, "a", "", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := JSONMember([]byte(tc.obj), tc.name)
			if string(got) != tc.want || ok != tc.ok {
				t.Errorf("JSONMember(%q, %q) = %q, %v; want %q, %v", tc.obj, tc.name, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func FuzzJSONMember(f *testing.F) {
	f.Add([]byte(`{"a":{"b":"c"},"d":[1,2]}`), "d")
	f.Add([]byte(`{"a`), "a")
	f.Fuzz(func(t *testing.T, obj []byte, name string) {
		JSONMember(obj, name) // must not panic
	})
}
