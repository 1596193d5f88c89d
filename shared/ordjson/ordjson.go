// Package ordjson decodes JSON keeping the order of object keys, which
// encoding/json's maps lose: JSON Schema properties are generated in the
// order written (shared/constrained), and chat templates serialise tool
// schemas as given (shared/jinja).
package ordjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Object is a JSON object: its keys in order (a repeated key keeps its
// first place and its last value) and their values.
type Object struct {
	Keys   []string
	Values map[string]any
}

// Get returns the value of key.
func (o *Object) Get(key string) (any, bool) {
	v, ok := o.Values[key]
	return v, ok
}

// Decode decodes data: objects as *Object, arrays as []any, numbers as
// json.Number, and strings, booleans and null as encoding/json does. It
// fails on nesting deeper than maxDepth and on data after the value.
func Decode(data []byte, maxDepth int) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decode(dec, 0, maxDepth)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

func decode(dec *json.Decoder, depth, maxDepth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("nested deeper than %d", maxDepth)
	}
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, ok := t.(json.Delim)
	if !ok {
		return t, nil
	}
	switch d {
	case '{':
		o := &Object{Values: map[string]any{}}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k, _ := kt.(string)
			v, err := decode(dec, depth+1, maxDepth)
			if err != nil {
				return nil, err
			}
			if _, dup := o.Values[k]; !dup {
				o.Keys = append(o.Keys, k)
			}
			o.Values[k] = v
		}
		_, err := dec.Token()
		return o, err
	case '[':
		l := []any{}
		for dec.More() {
			v, err := decode(dec, depth+1, maxDepth)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		_, err := dec.Token()
		return l, err
	}
	return nil, fmt.Errorf("unexpected %v", d)
}
