package gguf

import (
	"fmt"
	"math"
)

// Get returns the value of key.
func (f *File) Get(key string) (any, bool) {
	i, ok := f.kvIndex[key]
	if !ok {
		return nil, false
	}
	return f.KVs[i].Value, true
}

func (f *File) lookup(key string) (any, error) {
	v, ok := f.Get(key)
	if !ok {
		return nil, fmt.Errorf("gguf %s: missing key %q", f.name, key)
	}
	return v, nil
}

func (f *File) typeErr(key string, v any, want string) error {
	return fmt.Errorf("gguf %s: key %q has type %T, want %s", f.name, key, v, want)
}

// String returns a string value.
func (f *File) String(key string) (string, error) {
	v, err := f.lookup(key)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", f.typeErr(key, v, "string")
	}
	return s, nil
}

// Bool returns a bool value.
func (f *File) Bool(key string) (bool, error) {
	v, err := f.lookup(key)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, f.typeErr(key, v, "bool")
	}
	return b, nil
}

// asInt64 widens any integer value; ok is false for other types and for
// uint64 values above MaxInt64.
func asInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case uint8:
		return int64(x), true
	case int8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case int16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint64:
		if x > math.MaxInt64 {
			return 0, false
		}
		return int64(x), true
	}
	return 0, false
}

// Uint32 returns an integer value of any integer type that fits in uint32.
func (f *File) Uint32(key string) (uint32, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	n, ok := asInt64(v)
	if !ok {
		return 0, f.typeErr(key, v, "an integer")
	}
	if n < 0 || n > math.MaxUint32 {
		return 0, fmt.Errorf("gguf %s: key %q = %d does not fit in uint32", f.name, key, n)
	}
	return uint32(n), nil
}

// Uint64 returns a non-negative integer value of any integer type.
func (f *File) Uint64(key string) (uint64, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	if u, ok := v.(uint64); ok {
		return u, nil
	}
	n, ok := asInt64(v)
	if !ok {
		return 0, f.typeErr(key, v, "an integer")
	}
	if n < 0 {
		return 0, fmt.Errorf("gguf %s: key %q = %d is negative", f.name, key, n)
	}
	return uint64(n), nil
}

// Int64 returns an integer value of any integer type that fits in int64.
func (f *File) Int64(key string) (int64, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	n, ok := asInt64(v)
	if !ok {
		return 0, f.typeErr(key, v, "an integer that fits in int64")
	}
	return n, nil
}

// Float32 returns a float32 or float64 value as float32.
func (f *File) Float32(key string) (float32, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	switch x := v.(type) {
	case float32:
		return x, nil
	case float64:
		return float32(x), nil
	}
	return 0, f.typeErr(key, v, "float32")
}

// Strings returns a string array value.
func (f *File) Strings(key string) ([]string, error) {
	v, err := f.lookup(key)
	if err != nil {
		return nil, err
	}
	s, ok := v.([]string)
	if !ok {
		return nil, f.typeErr(key, v, "[]string")
	}
	return s, nil
}

// Int32s returns an integer array value of any element type that fits in int32.
func (f *File) Int32s(key string) ([]int32, error) {
	v, err := f.lookup(key)
	if err != nil {
		return nil, err
	}
	if s, ok := v.([]int32); ok {
		return s, nil
	}
	var out []int32
	conv := func(n int64, i int) error {
		if n < math.MinInt32 || n > math.MaxInt32 {
			return fmt.Errorf("gguf %s: key %q element %d = %d does not fit in int32", f.name, key, i, n)
		}
		out = append(out, int32(n))
		return nil
	}
	var err2 error
	switch s := v.(type) {
	case []uint8:
		for i, x := range s {
			err2 = firstErr(err2, conv(int64(x), i))
		}
	case []int8:
		for i, x := range s {
			err2 = firstErr(err2, conv(int64(x), i))
		}
	case []uint16:
		for i, x := range s {
			err2 = firstErr(err2, conv(int64(x), i))
		}
	case []int16:
		for i, x := range s {
			err2 = firstErr(err2, conv(int64(x), i))
		}
	case []uint32:
		for i, x := range s {
			err2 = firstErr(err2, conv(int64(x), i))
		}
	case []int64:
		for i, x := range s {
			err2 = firstErr(err2, conv(x, i))
		}
	case []uint64:
		for i, x := range s {
			err2 = firstErr(err2, conv(int64(min(x, math.MaxInt64)), i)) // clamped values still fail the int32 check
		}
	default:
		return nil, f.typeErr(key, v, "an integer array")
	}
	if err2 != nil {
		return nil, err2
	}
	if out == nil {
		out = []int32{}
	}
	return out, nil
}

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// Float32s returns a float32 (or float64) array value.
func (f *File) Float32s(key string) ([]float32, error) {
	v, err := f.lookup(key)
	if err != nil {
		return nil, err
	}
	switch s := v.(type) {
	case []float32:
		return s, nil
	case []float64:
		out := make([]float32, len(s))
		for i, x := range s {
			out[i] = float32(x)
		}
		return out, nil
	}
	return nil, f.typeErr(key, v, "[]float32")
}
