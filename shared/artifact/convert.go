package artifact

import modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"

// The one table of each enum between the APIs (bitnet.model.v1) and the
// domain; functions so that no package state can be mutated.
func formats() map[Format]modelv1.ModelFormat {
	return map[Format]modelv1.ModelFormat{
		FormatGGUF:          modelv1.ModelFormat_MODEL_FORMAT_GGUF,
		FormatHFSafetensors: modelv1.ModelFormat_MODEL_FORMAT_HF_SAFETENSORS,
		FormatHFPacked:      modelv1.ModelFormat_MODEL_FORMAT_HF_PACKED,
	}
}

func quants() map[QuantType]modelv1.QuantType {
	return map[QuantType]modelv1.QuantType{
		QuantF32:  modelv1.QuantType_QUANT_TYPE_F32,
		QuantF16:  modelv1.QuantType_QUANT_TYPE_F16,
		QuantBF16: modelv1.QuantType_QUANT_TYPE_BF16,
		QuantTQ20: modelv1.QuantType_QUANT_TYPE_TQ2_0,
		QuantTQ10: modelv1.QuantType_QUANT_TYPE_TQ1_0,
		QuantI2S:  modelv1.QuantType_QUANT_TYPE_I2_S,
	}
}

func sources() map[LineageSource]modelv1.LineageSource {
	return map[LineageSource]modelv1.LineageSource{
		SourceUpload:    modelv1.LineageSource_LINEAGE_SOURCE_UPLOAD,
		SourceQuantizer: modelv1.LineageSource_LINEAGE_SOURCE_QUANTIZER,
		SourceTrainer:   modelv1.LineageSource_LINEAGE_SOURCE_TRAINER,
	}
}

// FormatToPB converts a format; "" and unknown ones are UNSPECIFIED.
func FormatToPB(f Format) modelv1.ModelFormat { return formats()[f] }

// FormatFromPB converts an API format: UNSPECIFIED is "", a value without
// a domain format is "" and false.
func FormatFromPB(p modelv1.ModelFormat) (Format, bool) { return fromPB(formats(), p) }

// QuantToPB converts a quant type; "" and unknown ones are UNSPECIFIED.
func QuantToPB(q QuantType) modelv1.QuantType { return quants()[q] }

// QuantFromPB converts an API quant type: UNSPECIFIED is "", a value
// without a domain type is "" and false.
func QuantFromPB(p modelv1.QuantType) (QuantType, bool) { return fromPB(quants(), p) }

// SourceToPB converts a lineage source; "" and unknown ones are
// UNSPECIFIED.
func SourceToPB(s LineageSource) modelv1.LineageSource { return sources()[s] }

// SourceFromPB converts an API lineage source: UNSPECIFIED is "", a value
// without a domain source is "" and false.
func SourceFromPB(p modelv1.LineageSource) (LineageSource, bool) { return fromPB(sources(), p) }

// fromPB inverts one of the tables; the zero API value is the zero domain
// value.
func fromPB[K ~string, V comparable](m map[K]V, v V) (K, bool) {
	var zero V
	if v == zero {
		return "", true
	}
	for k, x := range m {
		if x == v {
			return k, true
		}
	}
	return "", false
}
