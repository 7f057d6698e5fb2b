package router

import (
	"encoding/json"
	"os"
	"testing"
)

// Routers that share a name and a listen address (containers of one
// image, each on 0.0.0.0:3001) still publish distinct monitor objects:
// the descriptor names the host.
func TestMonitorDescriptorNamesTheHost(t *testing.T) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		t.Fatalf("this test needs a host name: %q, %v", host, err)
	}
	cfg := DefaultConfig()
	cfg.MonitorTag = "routers"
	d, err := monitorDescriptor(cfg, []string{"ws://0.0.0.0:3001/"})
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Router string   `json:"hakuban_router"`
		Host   string   `json:"host"`
		Listen []string `json:"listen"`
	}
	if err := json.Unmarshal([]byte(d.JSON()), &v); err != nil {
		t.Fatal(err)
	}
	if v.Router != cfg.Name || v.Host != host || len(v.Listen) != 1 {
		t.Fatalf("descriptor %s, want the name, the host %q and the address", d, host)
	}
}
