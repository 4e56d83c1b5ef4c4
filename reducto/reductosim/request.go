package reductosim

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
)

// fieldError is one entry of FastAPI's 422 body {"detail":[...]}.
type fieldError struct {
	Loc  []any  `json:"loc"`
	Msg  string `json:"msg"`
	Type string `json:"type"`
}

func missing(loc ...any) fieldError {
	return fieldError{Loc: loc, Msg: "Field required", Type: "missing"}
}

func wrongString(loc ...any) fieldError {
	return fieldError{Loc: loc, Msg: "Input should be a valid string", Type: "string_type"}
}

// submission is what the simulator keeps from a valid request body.
type submission struct {
	metadata json.RawMessage
	hook     *hookTarget
}

// decode unmarshals a JSON body, turning decoding errors into FastAPI-style field errors.
func decode(data []byte, v any, loc ...any) []fieldError {
	if len(bytes.TrimSpace(data)) == 0 {
		return []fieldError{missing(loc...)}
	}
	err := json.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return []fieldError{{Loc: append(loc, se.Offset), Msg: "JSON decode error", Type: "json_invalid"}}
	case errors.As(err, &te):
		l := append([]any(nil), loc...)
		if te.Field != "" {
			for _, p := range strings.Split(te.Field, ".") {
				l = append(l, p)
			}
		}
		msg, typ := kindError(te.Type.Kind())
		return []fieldError{{Loc: l, Msg: msg, Type: typ}}
	}
	return []fieldError{{Loc: loc, Msg: "JSON decode error", Type: "json_invalid"}}
}

func kindError(k reflect.Kind) (msg, typ string) {
	switch k {
	case reflect.String:
		return "Input should be a valid string", "string_type"
	case reflect.Bool:
		return "Input should be a valid boolean", "bool_type"
	case reflect.Slice, reflect.Array:
		return "Input should be a valid list", "list_type"
	case reflect.Struct, reflect.Map, reflect.Pointer:
		return "Input should be a valid dictionary or object to extract fields from", "model_attributes_type"
	}
	return "Input should be a valid value", "value_error"
}

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

// compactJSON returns raw without insignificant whitespace, nil for absent or null.
func compactJSON(raw json.RawMessage) json.RawMessage {
	if isNull(raw) {
		return nil
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return nil
	}
	return b.Bytes()
}

// checkDocument validates a document reference: a URL string, a list of them (v3 input only)
// or an upload response {"file_id": ...}.
func checkDocument(raw json.RawMessage, allowList bool, loc ...any) []fieldError {
	if isNull(raw) {
		return []fieldError{missing(loc...)}
	}
	t := bytes.TrimSpace(raw)
	switch t[0] {
	case '"':
		return nil
	case '[':
		if !allowList {
			break
		}
		var items []json.RawMessage
		if errs := decode(t, &items, loc...); errs != nil {
			return errs
		}
		for i, it := range items {
			if it = bytes.TrimSpace(it); len(it) == 0 || it[0] != '"' {
				return []fieldError{wrongString(append(loc, i)...)}
			}
		}
		return nil
	case '{':
		var up struct {
			FileID *string `json:"file_id"`
		}
		if errs := decode(t, &up, loc...); errs != nil {
			return errs
		}
		if up.FileID == nil {
			return []fieldError{missing(append(loc, "file_id")...)}
		}
		return nil
	}
	return []fieldError{wrongString(loc...)}
}

type webhookRequest struct {
	Mode     *string         `json:"mode"`
	URL      *string         `json:"url"`
	Channels []string        `json:"channels"`
	Metadata json.RawMessage `json:"metadata"`
}

// parseV3 validates a v3 body (parse, extract, split, pipeline).
func parseV3(data []byte, ep endpoint) (submission, []fieldError) {
	var req struct {
		Input json.RawMessage `json:"input"`
		Async *struct {
			Metadata json.RawMessage `json:"metadata"`
			Priority *bool           `json:"priority"`
			Webhook  json.RawMessage `json:"webhook"`
		} `json:"async"`
		QueuePriority    *string         `json:"queue_priority"`
		SplitDescription json.RawMessage `json:"split_description"`
		PipelineID       *string         `json:"pipeline_id"`
	}
	if errs := decode(data, &req, "body"); errs != nil {
		return submission{}, errs
	}
	errs := checkDocument(req.Input, true, "body", "input")
	if ep == epSplit && isNull(req.SplitDescription) {
		errs = append(errs, missing("body", "split_description"))
	}
	if ep == epPipeline && req.PipelineID == nil {
		errs = append(errs, missing("body", "pipeline_id"))
	}
	var sub submission
	if req.Async != nil {
		sub.metadata = compactJSON(req.Async.Metadata)
		if !isNull(req.Async.Webhook) {
			var wh webhookRequest
			if werrs := decode(req.Async.Webhook, &wh, "body", "async", "webhook"); werrs != nil {
				errs = append(errs, werrs...)
			} else {
				// Both v3 variants default their mode; a url means the direct one.
				mode := hookSvix
				if wh.URL != nil {
					mode = hookDirect
				}
				if wh.Mode != nil {
					mode = *wh.Mode
				}
				switch mode {
				case hookSvix:
					sub.hook = &hookTarget{mode: hookSvix, channels: wh.Channels}
				case hookDirect:
					if wh.URL == nil {
						errs = append(errs, missing("body", "async", "webhook", "url"))
					} else {
						sub.hook = &hookTarget{mode: hookDirect, url: *wh.URL}
					}
				default:
					errs = append(errs, fieldError{Loc: []any{"body", "async", "webhook", "mode"},
						Msg: "Input should be 'svix' or 'direct'", Type: "literal_error"})
				}
			}
		}
	}
	return sub, errs
}

// parseEdit validates the legacy AsyncEditConfig body of /edit_async.
func parseEdit(data []byte) (submission, []fieldError) {
	var req struct {
		DocumentURL      json.RawMessage `json:"document_url"`
		EditInstructions *string         `json:"edit_instructions"`
		Priority         *bool           `json:"priority"`
		Webhook          json.RawMessage `json:"webhook"`
	}
	if errs := decode(data, &req, "body"); errs != nil {
		return submission{}, errs
	}
	errs := checkDocument(req.DocumentURL, false, "body", "document_url")
	if req.EditInstructions == nil {
		errs = append(errs, missing("body", "edit_instructions"))
	}
	var sub submission
	if !isNull(req.Webhook) {
		var wh webhookRequest
		if werrs := decode(req.Webhook, &wh, "body", "webhook"); werrs != nil {
			return sub, append(errs, werrs...)
		}
		sub.metadata = compactJSON(wh.Metadata)
		mode := "disabled"
		if wh.Mode != nil {
			mode = *wh.Mode
		}
		switch mode {
		case "disabled":
		case hookSvix:
			sub.hook = &hookTarget{mode: hookSvix, channels: wh.Channels}
		case hookDirect:
			// The legacy schema makes url optional; a direct webhook without one could never
			// be delivered, so the simulator rejects it.
			if wh.URL == nil {
				errs = append(errs, missing("body", "webhook", "url"))
			} else {
				sub.hook = &hookTarget{mode: hookDirect, url: *wh.URL}
			}
		default:
			errs = append(errs, fieldError{Loc: []any{"body", "webhook", "mode"},
				Msg: "Input should be 'disabled', 'svix' or 'direct'", Type: "enum"})
		}
	}
	return sub, errs
}
