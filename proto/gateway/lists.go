package gateway

import (
	"bytes"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// apiPackage prefixes the messages whose empty lists unary responses show;
// google.* types (errors, well-known types) keep their JSON mapping.
const apiPackage = "bitnet."

// withEmptyLists adds "name": [] (or {} for a map) to obj, the JSON of msg,
// for each of msg's own repeated and map fields that is empty, so that a
// unary response such as GET /v1/mesh/models on an empty registry reads
// {"models": []}, not {}. Nested messages keep protojson's omission.
// protoNames picks proto field names over lowerCamelCase JSON names.
func withEmptyLists(msg proto.Message, obj []byte, protoNames bool) []byte {
	if msg == nil {
		return obj
	}
	m := msg.ProtoReflect()
	if !m.IsValid() || !strings.HasPrefix(string(m.Descriptor().FullName()), apiPackage) {
		return obj
	}
	var add []string
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if !(fd.IsList() || fd.IsMap()) || m.Has(fd) {
			continue
		}
		name := fd.JSONName()
		if protoNames {
			name = string(fd.Name())
		}
		add = append(add, `"`+name+`":`+emptyValue(fd))
	}
	if len(add) == 0 {
		return obj
	}
	return appendMembers(obj, strings.Join(add, ","))
}

func emptyValue(fd protoreflect.FieldDescriptor) string {
	if fd.IsMap() {
		return "{}"
	}
	return "[]"
}

// appendMembers puts members (`"a":[],"b":{}`) last in the JSON object obj;
// anything that is not an object is returned as it is.
func appendMembers(obj []byte, members string) []byte {
	obj = bytes.TrimSpace(obj)
	if len(obj) < 2 || obj[0] != '{' || obj[len(obj)-1] != '}' {
		return obj
	}
	body := bytes.TrimSpace(obj[1 : len(obj)-1])
	out := make([]byte, 0, len(obj)+len(members)+2)
	out = append(out, '{')
	out = append(out, body...)
	if len(body) > 0 {
		out = append(out, ',')
	}
	out = append(out, members...)
	return append(out, '}')
}
