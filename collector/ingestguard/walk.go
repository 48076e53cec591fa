package ingestguard

import (
	"errors"
	"fmt"
)

// Limits bounds the work the receiver may do decoding one request.
type Limits struct {
	// MaxValueDepth is the deepest nesting of AnyValues allowed (a scalar attribute value is
	// depth 1, an array of scalars depth 2).
	MaxValueDepth int
	// MaxMessages is the most embedded messages (spans, attributes, values, points...) one
	// request may hold: it caps the objects the decoder allocates, whatever their wire size.
	MaxMessages int
}

// jsonDepth is the JSON nesting that MaxValueDepth allows: OTLP/JSON needs at most 15
// levels to reach an attribute's value (metrics: request, resourceMetrics, scopeMetrics,
// metrics, histogram, dataPoints, exemplars, filteredAttributes, value) and 3 per further
// AnyValue level (arrayValue/kvlistValue, values, the element).
func (l Limits) jsonDepth() int { return 16 + 3*l.MaxValueDepth }

// Reasons a request is refused; each is also the "reason" attribute of the refusal counter.
var (
	errTooDeep        = errors.New("too_deep")
	errTooManyObjects = errors.New("too_many_messages")
	errMalformed      = errors.New("malformed")
)

type frame struct {
	end int
	typ msgType
}

// checkProto walks an OTLP protobuf message of type root iteratively, descending only into
// the fields the OTLP schema declares as messages, and reports the first limit crossed or
// wire-format error. Its cost is linear in len(buf) and its memory is bounded by the depth
// limit, whatever the input.
func checkProto(buf []byte, root msgType, limits Limits) error {
	stack := make([]frame, 0, 16)
	cur := frame{end: len(buf), typ: root}
	pos, valueDepth, messages := 0, 0, 0
	for {
		if pos == cur.end {
			if len(stack) == 0 {
				return nil
			}
			if cur.typ == msgAnyValue {
				valueDepth--
			}
			cur = stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			continue
		}
		var tag uint64
		if b := buf[pos]; b < 0x80 { // one-byte tags: every OTLP field number is below 16
			tag = uint64(b)
			pos++
		} else {
			var n int
			tag, n = uvarint(buf[pos:cur.end])
			if n <= 0 {
				return fmt.Errorf("%w: bad tag at byte %d", errMalformed, pos)
			}
			pos += n
		}
		field, wireType := tag>>3, tag&7
		switch wireType {
		case 0: // varint
			for pos < cur.end && buf[pos] >= 0x80 {
				pos++
			}
			pos++ // the last byte; an unterminated varint ends past cur.end: caught below
		case 1: // fixed64
			pos += 8
		case 5: // fixed32
			pos += 4
		case 2: // length-delimited
			var length uint64
			if pos < cur.end && buf[pos] < 0x80 {
				length = uint64(buf[pos])
				pos++
			} else {
				var n int
				length, n = uvarint(buf[pos:cur.end])
				if n <= 0 {
					return fmt.Errorf("%w: bad length at byte %d", errMalformed, pos)
				}
				pos += n
			}
			if length > uint64(cur.end-pos) {
				return fmt.Errorf("%w: bad length at byte %d", errMalformed, pos)
			}
			var child msgType
			if field <= maxMessageField {
				child = messageFields[cur.typ][field]
			} else {
				child = deprecatedField(cur.typ, field)
			}
			if child == msgNone {
				pos += int(length)
				continue
			}
			messages++
			if messages > limits.MaxMessages {
				return fmt.Errorf("%w: more than %d messages", errTooManyObjects, limits.MaxMessages)
			}
			if child == msgAnyValue {
				valueDepth++
				if valueDepth > limits.MaxValueDepth {
					return fmt.Errorf("%w: values nested deeper than %d", errTooDeep, limits.MaxValueDepth)
				}
			}
			stack = append(stack, cur)
			cur = frame{end: pos + int(length), typ: child}
		default: // groups (never used by OTLP) and invalid wire types
			return fmt.Errorf("%w: wire type %d at byte %d", errMalformed, wireType, pos)
		}
		if pos > cur.end {
			return fmt.Errorf("%w: field overruns its message at byte %d", errMalformed, pos)
		}
	}
}

// uvarint decodes a protobuf varint; n <= 0 when buf ends first or it is over 10 bytes.
func uvarint(buf []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(buf) && i < 10; i++ {
		b := buf[i]
		v |= uint64(b&0x7f) << (7 * uint(i))
		if b < 0x80 {
			return v, i + 1
		}
	}
	return 0, 0
}

// checkJSON bounds the nesting of a JSON document and the number of objects in it with one
// pass over the bytes (strings skipped with their escapes). It does not validate the JSON:
// the receiver's decoder does that, within these bounds.
func checkJSON(buf []byte, limits Limits) error {
	maxDepth := limits.jsonDepth()
	depth, objects := 0, 0
	inString := false
	for i := 0; i < len(buf); i++ {
		c := buf[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > maxDepth {
				return fmt.Errorf("%w: JSON nested deeper than %d", errTooDeep, maxDepth)
			}
			if c == '{' {
				objects++
				if objects > limits.MaxMessages {
					return fmt.Errorf("%w: more than %d JSON objects", errTooManyObjects, limits.MaxMessages)
				}
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}
