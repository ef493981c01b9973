package fakerun

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The HTTP/JSON surface of the Admin API: each RPC the fake serves over gRPC
// is also served at the path its google.api.http rule gives, and REST calls go
// through the same handlers and the same interceptor as gRPC calls, so
// counts, faults and latency apply to both alike.

// restBinding is one google.api.http rule: verb and path template, the request
// field the body fills ("" for none, "*" for the whole request) and the RPC.
type restBinding struct {
	verb, template, body, method string
}

// restBindings are the HTTP rules of the RPCs the fake serves. Those of
// Services and Revisions are the google.api.http options of
// google/cloud/run/v2/service.proto and revision.proto (a test compares them
// with the descriptors compiled into runpb); those of google.longrunning.
// Operations are the http rules of Cloud Run's service config (run_v2.yaml),
// as the generated REST client, cloud.google.com/go/run/apiv2, sends them.
var restBindings = []restBinding{
	{"POST", "/v2/{parent=projects/*/locations/*}/services", "service", runpb.Services_CreateService_FullMethodName},
	{"GET", "/v2/{name=projects/*/locations/*/services/*}", "", runpb.Services_GetService_FullMethodName},
	{"GET", "/v2/{parent=projects/*/locations/*}/services", "", runpb.Services_ListServices_FullMethodName},
	{"PATCH", "/v2/{service.name=projects/*/locations/*/services/*}", "service", runpb.Services_UpdateService_FullMethodName},
	{"DELETE", "/v2/{name=projects/*/locations/*/services/*}", "", runpb.Services_DeleteService_FullMethodName},
	{"GET", "/v2/{resource=projects/*/locations/*/services/*}:getIamPolicy", "", runpb.Services_GetIamPolicy_FullMethodName},
	{"POST", "/v2/{resource=projects/*/locations/*/services/*}:setIamPolicy", "*", runpb.Services_SetIamPolicy_FullMethodName},
	{"POST", "/v2/{resource=projects/*/locations/*/services/*}:testIamPermissions", "*", runpb.Services_TestIamPermissions_FullMethodName},

	{"GET", "/v2/{name=projects/*/locations/*/services/*/revisions/*}", "", runpb.Revisions_GetRevision_FullMethodName},
	{"GET", "/v2/{name=projects/*/locations/*/workerPools/*/revisions/*}", "", runpb.Revisions_GetRevision_FullMethodName},
	{"GET", "/v2/{parent=projects/*/locations/*/services/*}/revisions", "", runpb.Revisions_ListRevisions_FullMethodName},
	{"GET", "/v2/{parent=projects/*/locations/*/workerPools/*}/revisions", "", runpb.Revisions_ListRevisions_FullMethodName},
	{"DELETE", "/v2/{name=projects/*/locations/*/services/*/revisions/*}", "", runpb.Revisions_DeleteRevision_FullMethodName},
	{"DELETE", "/v2/{name=projects/*/locations/*/workerPools/*/revisions/*}", "", runpb.Revisions_DeleteRevision_FullMethodName},

	{"GET", "/v2/{name=projects/*/locations/*/operations/*}", "", longrunningpb.Operations_GetOperation_FullMethodName},
	{"GET", "/v2/{name=projects/*/locations/*}/operations", "", longrunningpb.Operations_ListOperations_FullMethodName},
	{"DELETE", "/v2/{name=projects/*/locations/*/operations/*}", "", longrunningpb.Operations_DeleteOperation_FullMethodName},
	{"POST", "/v2/{name=projects/*/locations/*/operations/*}:wait", "*", longrunningpb.Operations_WaitOperation_FullMethodName},
}

// restRoute is a binding resolved to the handler grpc.Server would run.
type restRoute struct {
	restBinding
	tmpl    pathTemplate
	impl    any // the service implementation
	handler grpc.MethodHandler
}

// restHandler serves the HTTP/JSON API.
type restHandler struct {
	f      *fake
	routes []restRoute
}

// newRESTHandler resolves restBindings against the services registered by
// NewUnstartedServer (impls maps a gRPC service name to its implementation).
func newRESTHandler(f *fake, descs []*grpc.ServiceDesc, impls []any) *restHandler {
	h := &restHandler{f: f}
	for _, b := range restBindings {
		rt := restRoute{restBinding: b, tmpl: mustParseTemplate(b.template)}
		for i, d := range descs {
			for _, m := range d.Methods {
				if "/"+d.ServiceName+"/"+m.MethodName == b.method {
					rt.impl, rt.handler = impls[i], m.Handler
				}
			}
		}
		if rt.handler == nil {
			panic("fakerun: no handler for " + b.method)
		}
		h.routes = append(h.routes, rt)
	}
	return h
}

// restMaxBody bounds a request body. Cloud Run's bound is not documented; it
// is at least that of a Service with the largest template it accepts, which
// this exceeds.
const restMaxBody = 16 << 20

func (h *restHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	out, err := parseSystemParams(r.URL.Query())
	if err != nil {
		writeRESTError(w, out, status.Convert(err))
		return
	}
	var rt *restRoute
	var value string
	for i := range h.routes {
		if v, ok := h.routes[i].tmpl.match(r.URL.Path); ok && h.routes[i].verb == r.Method {
			rt, value = &h.routes[i], v
			break
		}
	}
	if rt == nil {
		writeRESTError(w, out, status.Newf(codes.NotFound, "fakerun serves no %s %s: it serves the HTTP rules of google.cloud.run.v2.Services, google.cloud.run.v2.Revisions and google.longrunning.Operations (see fakes/README.md, REST).", r.Method, r.URL.Path))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, restMaxBody))
	if err != nil {
		writeRESTError(w, out, status.Newf(codes.InvalidArgument, "Cannot read the request body: %v", err))
		return
	}
	dec := func(in any) error { return rt.decode(in.(proto.Message), r, value, body) }
	resp, err := rt.handler(rt.impl, r.Context(), dec, h.f.intercept)
	if err != nil {
		writeRESTError(w, out, status.Convert(err))
		return
	}
	b, err := out.marshal().Marshal(resp.(proto.Message))
	if err != nil {
		writeRESTError(w, out, status.Newf(codes.Internal, "fakerun: encode the response: %v", err))
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_, _ = w.Write(b)
}

// restOutput is how a response is encoded, from the system parameters.
type restOutput struct {
	enumNumbers bool // $alt=json;enum-encoding=int, as the generated clients ask
	pretty      bool // prettyPrint, true unless prettyPrint=false
}

func (o restOutput) marshal() protojson.MarshalOptions {
	m := protojson.MarshalOptions{UseEnumNumbers: o.enumNumbers}
	if o.pretty {
		m.Multiline, m.Indent = true, "  "
	}
	return m
}

// parseSystemParams reads Google's system parameters that change the
// encoding; the others (key, quotaUser, $.xgafv, ...) are accepted and
// ignored. Partial responses (fields) and other encodings (alt=proto) are not
// served.
func parseSystemParams(q map[string][]string) (restOutput, error) {
	out := restOutput{pretty: true}
	for k, vs := range q {
		v := ""
		if len(vs) > 0 {
			v = vs[len(vs)-1]
		}
		switch strings.TrimPrefix(k, "$") {
		case "alt":
			switch v {
			case "json":
			case "json;enum-encoding=int":
				out.enumNumbers = true
			default:
				return out, status.Errorf(codes.Unimplemented, "fakerun answers JSON only: alt=%s is not served.", v)
			}
		case "prettyPrint":
			out.pretty = v != "false"
		case "fields":
			return out, status.Error(codes.Unimplemented, "fakerun does not serve partial responses: drop the fields parameter.")
		}
	}
	return out, nil
}

// isSystemParam says whether a query parameter is one of Google's system
// parameters rather than a field of the request.
func isSystemParam(k string) bool {
	switch strings.TrimPrefix(k, "$") {
	case "alt", "prettyPrint", "fields", "key", "access_token", "oauth_token", "quotaUser", "userIp",
		"callback", "upload_protocol", "uploadType", ".xgafv", "xgafv", "outputDefaults":
		return true
	}
	return false
}

// decode fills a request from an HTTP request, as Google's HTTP/JSON
// transcoding does: the body (protojson, field names in lowerCamelCase or as
// in the proto), then the query parameters (fields of the request not bound
// by the path or the body, either name form, dotted for nested fields), then
// the path variable.
func (rt *restRoute) decode(in proto.Message, r *http.Request, value string, body []byte) error {
	m := in.ProtoReflect()
	if rt.body != "" && len(bytes.TrimSpace(body)) > 0 {
		target := in
		if rt.body != "*" {
			fd := m.Descriptor().Fields().ByName(protoreflect.Name(rt.body))
			target = m.Mutable(fd).Message().Interface()
		}
		if err := protojson.Unmarshal(body, target); err != nil {
			return invalidPayload(rt.body, strings.TrimPrefix(err.Error(), "proto: "))
		}
	}
	if rt.body != "*" {
		for k, vs := range r.URL.Query() {
			if isSystemParam(k) {
				continue
			}
			if err := setQueryParam(m, k, vs); err != nil {
				return err
			}
		}
	}
	setPath(m, rt.tmpl.variable, value)
	return nil
}

func invalidPayload(field, detail string) error {
	st := status.Newf(codes.InvalidArgument, "Invalid JSON payload received. %s", detail)
	if field == "*" {
		field = ""
	}
	if d, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: "Invalid JSON payload received. " + detail}}}); err == nil {
		st = d
	}
	return st.Err()
}

// fieldByName finds a field by its JSON name or its proto name.
func fieldByName(md protoreflect.MessageDescriptor, name string) protoreflect.FieldDescriptor {
	if fd := md.Fields().ByJSONName(name); fd != nil {
		return fd
	}
	return md.Fields().ByName(protoreflect.Name(name))
}

// setPath sets the (possibly nested, dotted) field a path variable binds.
func setPath(m protoreflect.Message, path, value string) {
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		m = m.Mutable(m.Descriptor().Fields().ByName(protoreflect.Name(p))).Message()
	}
	m.Set(m.Descriptor().Fields().ByName(protoreflect.Name(parts[len(parts)-1])), protoreflect.ValueOfString(value))
}

// setQueryParam sets the field a query parameter names.
func setQueryParam(m protoreflect.Message, key string, values []string) error {
	unknown := func() error {
		return invalidPayload("", fmt.Sprintf("Unknown name %q: Cannot bind query parameter. Field '%s' could not be found in request message.", key, key))
	}
	parts := strings.Split(key, ".")
	for i, p := range parts {
		fd := fieldByName(m.Descriptor(), p)
		if fd == nil {
			return unknown()
		}
		if i < len(parts)-1 {
			if fd.Kind() != protoreflect.MessageKind || fd.IsList() || fd.IsMap() {
				return unknown()
			}
			m = m.Mutable(fd).Message()
			continue
		}
		if fd.IsMap() || (fd.Kind() == protoreflect.MessageKind && !isWellKnownScalar(fd.Message())) {
			return invalidPayload("", fmt.Sprintf("Invalid value at '%s': a query parameter cannot set a message field.", key))
		}
		if !fd.IsList() && len(values) > 1 {
			return invalidPayload("", fmt.Sprintf("Invalid value at '%s': repeated values for a field that is not repeated.", key))
		}
		for _, v := range values {
			val, err := parseScalar(m, fd, v)
			if err != nil {
				return invalidPayload("", fmt.Sprintf("Invalid value at '%s' (%s), %q: %v", key, fd.Kind(), v, err))
			}
			if fd.IsList() {
				m.Mutable(fd).List().Append(val)
			} else {
				m.Set(fd, val)
			}
		}
	}
	return nil
}

// isWellKnownScalar says whether a message type is written as one JSON
// string: FieldMask, Duration, Timestamp.
func isWellKnownScalar(md protoreflect.MessageDescriptor) bool {
	switch md.FullName() {
	case "google.protobuf.FieldMask", "google.protobuf.Duration", "google.protobuf.Timestamp":
		return true
	}
	return false
}

// parseScalar parses one query parameter value for fd.
func parseScalar(m protoreflect.Message, fd protoreflect.FieldDescriptor, v string) (protoreflect.Value, error) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(v), nil
	case protoreflect.BoolKind:
		b, err := strconv.ParseBool(v)
		return protoreflect.ValueOfBool(b), err
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		n, err := strconv.ParseInt(v, 10, 32)
		return protoreflect.ValueOfInt32(int32(n)), err
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		n, err := strconv.ParseInt(v, 10, 64)
		return protoreflect.ValueOfInt64(n), err
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		n, err := strconv.ParseUint(v, 10, 32)
		return protoreflect.ValueOfUint32(uint32(n)), err
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		n, err := strconv.ParseUint(v, 10, 64)
		return protoreflect.ValueOfUint64(n), err
	case protoreflect.FloatKind:
		n, err := strconv.ParseFloat(v, 32)
		return protoreflect.ValueOfFloat32(float32(n)), err
	case protoreflect.DoubleKind:
		n, err := strconv.ParseFloat(v, 64)
		return protoreflect.ValueOfFloat64(n), err
	case protoreflect.BytesKind:
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			b, err = base64.URLEncoding.DecodeString(v)
		}
		return protoreflect.ValueOfBytes(b), err
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByName(protoreflect.Name(v)); ev != nil {
			return protoreflect.ValueOfEnum(ev.Number()), nil
		}
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return protoreflect.Value{}, errors.New("not a value of " + string(fd.Enum().FullName()))
		}
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(n)), nil
	case protoreflect.MessageKind:
		msg := m.NewField(fd).Message()
		if fd.Message().FullName() == "google.protobuf.FieldMask" {
			v = camelMask(v)
		}
		raw, _ := json.Marshal(v)
		if err := protojson.Unmarshal(raw, msg.Interface()); err != nil {
			return protoreflect.Value{}, errors.New(strings.TrimPrefix(err.Error(), "proto: "))
		}
		return protoreflect.ValueOfMessage(msg), nil
	}
	return protoreflect.Value{}, fmt.Errorf("unsupported kind %s", fd.Kind())
}

// camelMask writes the paths of a field mask in lowerCamelCase, the form the
// JSON mapping of FieldMask takes, so that a mask given with proto names
// ("template.max_instance_request_concurrency") is accepted as well.
func camelMask(v string) string {
	paths := strings.Split(v, ",")
	for i, p := range paths {
		var b strings.Builder
		up := false
		for _, r := range strings.TrimSpace(p) {
			switch {
			case r == '_':
				up = true
			case up && r >= 'a' && r <= 'z':
				b.WriteRune(r - 'a' + 'A')
				up = false
			default:
				b.WriteRune(r)
				up = false
			}
		}
		paths[i] = b.String()
	}
	return strings.Join(paths, ",")
}

// httpStatus is the HTTP status of each canonical code, as google/rpc/code.proto
// gives it.
var httpStatus = map[codes.Code]int{
	codes.OK:                 http.StatusOK,
	codes.Canceled:           499,
	codes.Unknown:            http.StatusInternalServerError,
	codes.InvalidArgument:    http.StatusBadRequest,
	codes.DeadlineExceeded:   http.StatusGatewayTimeout,
	codes.NotFound:           http.StatusNotFound,
	codes.AlreadyExists:      http.StatusConflict,
	codes.PermissionDenied:   http.StatusForbidden,
	codes.Unauthenticated:    http.StatusUnauthorized,
	codes.ResourceExhausted:  http.StatusTooManyRequests,
	codes.FailedPrecondition: http.StatusBadRequest,
	codes.Aborted:            http.StatusConflict,
	codes.OutOfRange:         http.StatusBadRequest,
	codes.Unimplemented:      http.StatusNotImplemented,
	codes.Internal:           http.StatusInternalServerError,
	codes.Unavailable:        http.StatusServiceUnavailable,
	codes.DataLoss:           http.StatusInternalServerError,
}

// writeRESTError answers with Google's JSON error body:
// {"error":{"code":HTTP,"message":...,"status":"ABORTED","details":[...]}}.
func writeRESTError(w http.ResponseWriter, out restOutput, st *status.Status) {
	hs, ok := httpStatus[st.Code()]
	if !ok {
		hs = http.StatusInternalServerError
	}
	type errBody struct {
		Code    int               `json:"code"`
		Message string            `json:"message"`
		Status  string            `json:"status"`
		Details []json.RawMessage `json:"details,omitempty"`
	}
	e := errBody{Code: hs, Message: st.Message(), Status: code.Code(st.Code()).String()}
	for _, d := range st.Proto().GetDetails() {
		if b, err := out.marshal().Marshal(d); err == nil {
			e.Details = append(e.Details, b)
		}
	}
	var b []byte
	if out.pretty {
		b, _ = json.MarshalIndent(struct {
			Error errBody `json:"error"`
		}{e}, "", "  ")
	} else {
		b, _ = json.Marshal(struct {
			Error errBody `json:"error"`
		}{e})
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(hs)
	_, _ = w.Write(append(b, '\n'))
}

// pathTemplate is a google.api.http path template with one variable:
// "/v2/{name=projects/*/locations/*}/operations:verb".
type pathTemplate struct {
	segs       []string // literals, or "*"
	start, end int      // the variable spans segs[start:end]
	variable   string   // the field it binds, e.g. "service.name"
	verb       string   // the custom verb, or ""
}

func mustParseTemplate(t string) pathTemplate {
	var p pathTemplate
	rest := strings.TrimPrefix(t, "/")
	if i := strings.LastIndexByte(rest, ':'); i > strings.LastIndexByte(rest, '}') {
		rest, p.verb = rest[:i], rest[i+1:]
	}
	for rest != "" {
		if strings.HasPrefix(rest, "{") {
			end := strings.IndexByte(rest, '}')
			v := rest[1:end]
			name, pattern, ok := strings.Cut(v, "=")
			if !ok {
				pattern = "*"
			}
			p.variable, p.start = name, len(p.segs)
			p.segs = append(p.segs, strings.Split(pattern, "/")...)
			p.end = len(p.segs)
			rest = strings.TrimPrefix(rest[end+1:], "/")
			continue
		}
		seg, after, _ := strings.Cut(rest, "/")
		p.segs = append(p.segs, seg)
		rest = after
	}
	if p.variable == "" {
		panic("fakerun: path template without a variable: " + t)
	}
	return p
}

// match returns the variable's value if path (unescaped) matches.
func (p pathTemplate) match(path string) (string, bool) {
	path = strings.TrimPrefix(path, "/")
	segs := strings.Split(path, "/")
	last := segs[len(segs)-1]
	if i := strings.LastIndexByte(last, ':'); i >= 0 {
		if last[i+1:] != p.verb {
			return "", false
		}
		segs[len(segs)-1] = last[:i]
	} else if p.verb != "" {
		return "", false
	}
	if len(segs) != len(p.segs) {
		return "", false
	}
	for i, s := range p.segs {
		if s == "*" && segs[i] == "" || s != "*" && s != segs[i] {
			return "", false
		}
	}
	return strings.Join(segs[p.start:p.end], "/"), true
}
