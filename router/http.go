package router

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/hakuban/hakuban/core"
)

// Handler returns the router's HTTP endpoints, for serving from another
// server (Start serves them on Config.MetricsAddr):
//
//   - /healthz: 200 while the router runs, 503 before Start and during
//     shutdown.
//   - /readyz: 200 when it listens and, with upstreams, is connected to
//     one; 503 with the reason otherwise.
//   - /metrics: Prometheus text format (objects, contracts, links, bytes,
//     exchange counters, limits).
//   - /snapshot: the exchange's snapshot as JSON.
func (r *Router) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		r.mu.Lock()
		running := r.state == stateRunning
		r.mu.Unlock()
		if !running {
			http.Error(w, "not running", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := r.Ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Write(r.Metrics())
	})
	mux.HandleFunc("GET /snapshot", func(w http.ResponseWriter, _ *http.Request) {
		b, err := r.ex.SnapshotJSON()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	})
	return mux
}

// Metrics returns the router's metrics in the Prometheus text exposition
// format (version 0.0.4).
func (r *Router) Metrics() []byte {
	snap := r.ex.Snapshot()
	r.mu.Lock()
	listeners, connector, running := r.listeners, r.connector, r.state == stateRunning
	r.mu.Unlock()

	var p promWriter
	p.gauge("hakuban_up", "1 while the router runs.", boolValue(running))
	p.gauge("hakuban_ready", "1 while the router is ready (see /readyz).", boolValue(r.Ready() == nil))

	var live, observed, size int
	for _, o := range snap.Objects {
		if o.Live {
			live++
		}
		if o.Observed {
			observed++
		}
		size += o.Size
	}
	p.gauge("hakuban_objects", "Objects the exchange knows.", float64(len(snap.Objects)))
	p.gauge("hakuban_objects_live", "Live objects.", float64(live))
	p.gauge("hakuban_objects_observed", "Observed objects.", float64(observed))
	p.gauge("hakuban_object_state_bytes", "Bytes of state data held.", float64(size))
	p.gauge("hakuban_tags", "Tags the exchange knows.", float64(len(snap.Tags)))

	kinds := map[string]int{"object_observe": 0, "object_expose": 0, "tag_observe": 0, "tag_expose": 0}
	for _, c := range snap.Contracts {
		kinds[c.Kind]++
	}
	p.family("hakuban_contracts", "gauge", "Open contracts (made on behalf of links), by kind.")
	for _, k := range sortedKeys(kinds) {
		p.sample("hakuban_contracts", float64(kinds[k]), "kind", k)
	}

	roles := map[string]int{"downstream": 0, "upstream": 0}
	for _, l := range snap.Links {
		roles[l.Role]++
	}
	p.family("hakuban_links", "gauge", "Established links, by role.")
	for _, k := range sortedKeys(roles) {
		p.sample("hakuban_links", float64(roles[k]), "role", k)
	}

	// Per-link traffic: downstream links from the listeners (the remote
	// address tells apart peers with the same name), the upstream link
	// from the snapshot.
	type linkRow struct {
		role, peer, remote string
		in, out            uint64
	}
	var rows []linkRow
	var total core.ListenerStats
	for _, l := range listeners {
		for _, li := range l.Links() {
			rows = append(rows, linkRow{"downstream", li.Peer, li.RemoteAddr, li.BytesIn, li.BytesOut})
		}
		s := l.Stats()
		total.Accepted += s.Accepted
		total.Refused += s.Refused
		total.BytesIn += s.BytesIn
		total.BytesOut += s.BytesOut
		total.FramesIn += s.FramesIn
		total.FramesOut += s.FramesOut
	}
	var upURL string
	if connector != nil {
		upURL = connector.Status().URL
	}
	for _, l := range snap.Links {
		if l.Role == "upstream" {
			rows = append(rows, linkRow{"upstream", l.Peer, upURL, l.BytesIn, l.BytesOut})
		}
	}
	p.family("hakuban_link_received_bytes_total", "counter", "Bytes received over each open link (whole frames).")
	for _, row := range rows {
		p.sample("hakuban_link_received_bytes_total", float64(row.in), "role", row.role, "peer", row.peer, "remote", row.remote)
	}
	p.family("hakuban_link_sent_bytes_total", "counter", "Bytes sent over each open link (whole frames).")
	for _, row := range rows {
		p.sample("hakuban_link_sent_bytes_total", float64(row.out), "role", row.role, "peer", row.peer, "remote", row.remote)
	}
	p.counter("hakuban_downstream_links_accepted_total", "Downstream links that completed the handshake.", float64(total.Accepted))
	p.counter("hakuban_downstream_links_refused_total", "Downstream upgrades and handshakes refused (subprotocol, version, token, timeout).", float64(total.Refused))
	p.counter("hakuban_downstream_received_bytes_total", "Bytes received from downstreams, closed links included.", float64(total.BytesIn))
	p.counter("hakuban_downstream_sent_bytes_total", "Bytes sent to downstreams, closed links included.", float64(total.BytesOut))
	p.counter("hakuban_downstream_received_frames_total", "Frames received from downstreams, closed links included.", float64(total.FramesIn))
	p.counter("hakuban_downstream_sent_frames_total", "Frames sent to downstreams, closed links included.", float64(total.FramesOut))

	if connector != nil {
		st := connector.Status()
		p.gauge("hakuban_upstream_connected", "1 while the link to the upstream is up.", boolValue(st.State == core.ConnectorConnected))
		p.counter("hakuban_upstream_connects_total", "Sessions established with the upstream.", float64(st.Connects))
		p.gauge("hakuban_upstream_failures", "Failed upstream attempts since the last stable session.", float64(st.Failures))
	}

	for _, c := range counterValues(snap.Counters) {
		p.counter("hakuban_"+c.name+"_total", "Exchange counter "+c.name+".", float64(c.value))
	}

	p.family("hakuban_limit", "gauge", "The link limits this router announces and enforces.")
	lim := reflect.ValueOf(r.cfg.Limits.WithDefaults())
	for i := range lim.NumField() {
		f := lim.Type().Field(i)
		if f.Type.Kind() == reflect.Int {
			p.sample("hakuban_limit", float64(lim.Field(i).Int()), "name", snakeCase(f.Name))
		}
	}
	return p.buf.Bytes()
}

type namedCounter struct {
	name  string
	value uint64
}

// counterValues lists the exchange's counters under their JSON names, so
// that counters added to core.Counters appear here without code changes.
func counterValues(c core.Counters) []namedCounter {
	b, err := json.Marshal(c)
	if err != nil {
		return nil
	}
	var m map[string]uint64
	if err := json.Unmarshal(b, &m); err != nil {
		return nil
	}
	out := make([]namedCounter, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, namedCounter{k, m[k]})
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// snakeCase turns "MaxFrame" into "max_frame".
func snakeCase(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// promWriter writes the Prometheus text exposition format.
type promWriter struct{ buf bytes.Buffer }

func (p *promWriter) family(name, typ, help string) {
	fmt.Fprintf(&p.buf, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

// sample writes one sample; labels are name, value pairs.
func (p *promWriter) sample(name string, v float64, labels ...string) {
	p.buf.WriteString(name)
	if len(labels) > 0 {
		p.buf.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				p.buf.WriteByte(',')
			}
			p.buf.WriteString(labels[i])
			p.buf.WriteString(`="`)
			p.buf.WriteString(labelEscaper.Replace(labels[i+1]))
			p.buf.WriteByte('"')
		}
		p.buf.WriteByte('}')
	}
	p.buf.WriteByte(' ')
	p.buf.WriteString(strconv.FormatFloat(v, 'f', -1, 64))
	p.buf.WriteByte('\n')
}

func (p *promWriter) gauge(name, help string, v float64) {
	p.family(name, "gauge", help)
	p.sample(name, v)
}

func (p *promWriter) counter(name, help string, v float64) {
	p.family(name, "counter", help)
	p.sample(name, v)
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
