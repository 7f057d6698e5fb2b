package router

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/hakuban/hakuban/core"
)

// Auth is a parsed auth file (docs/router.md, "Token permissions"): which
// token opens a link and what the link's subtree may observe and expose
// (SPEC §3.3). Its Authorize is what the router's listeners call for each
// handshake. An Auth is immutable; the router swaps in a new one on
// ReloadAuth.
//
// The file is JSON:
//
//	{
//	  "clients": [
//	    {"name": "dashboard", "token_sha256": "<hex SHA-256 of the token>",
//	     "observe": {"tags": ["sensors"], "objects": [{"json": "status"}]}},
//	    {"name": "ingest", "token": "plain token",
//	     "observe": "*", "expose": {"tags": ["sensors"]}}
//	  ],
//	  "anonymous": {"name": "guest", "observe": {"tags": ["public"]}}
//	}
//
// A rule ("observe", "expose") is "*" (everything) or an object with
// "tags" (tag descriptors as JSON values) and "objects" (object
// descriptors as {"json": value, "tags": [...]}); a missing rule allows
// nothing. "anonymous", when present, is for clients that send no token;
// without it they are refused, and so is every unknown token.
type Auth struct {
	clients   []authClient
	anonymous *core.Permissions
}

// authClient is one client entry: the SHA-256 of its token and what the
// token allows.
type authClient struct {
	hash  [sha256.Size]byte
	perms *core.Permissions
}

// authFileJSON is the file's layout.
type authFileJSON struct {
	Clients   []authEntryJSON `json:"clients"`
	Anonymous *authEntryJSON  `json:"anonymous"`
}

type authEntryJSON struct {
	Name        string          `json:"name"`
	Token       *string         `json:"token"`
	TokenSHA256 *string         `json:"token_sha256"`
	Observe     json.RawMessage `json:"observe"`
	Expose      json.RawMessage `json:"expose"`
}

// ruleJSON is a rule other than "*".
type ruleJSON struct {
	Tags    []core.TagDescriptor    `json:"tags"`
	Objects []core.ObjectDescriptor `json:"objects"`
}

// LoadAuth reads and parses the auth file at path. Errors name the file.
func LoadAuth(path string) (*Auth, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("router: auth file: %w", err)
	}
	a, err := ParseAuth(data)
	if err != nil {
		return nil, fmt.Errorf("router: auth file %s: %w", path, err)
	}
	return a, nil
}

// ParseAuth parses the content of an auth file (see Auth). Unknown fields
// are errors, so that a misspelt rule does not silently allow nothing.
func ParseAuth(data []byte) (*Auth, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f authFileJSON
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("invalid JSON: more than one value")
	}
	a := &Auth{}
	names := map[string]bool{}
	for i, e := range f.Clients {
		where := fmt.Sprintf("clients[%d]", i)
		if e.Name != "" {
			where += fmt.Sprintf(" (%q)", e.Name)
		}
		perms, err := e.permissions()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		var hash [sha256.Size]byte
		switch {
		case e.Token != nil && e.TokenSHA256 != nil:
			return nil, fmt.Errorf("%s: give token or token_sha256, not both", where)
		case e.Token != nil:
			if *e.Token == "" {
				return nil, fmt.Errorf("%s: empty token (clients without a token use \"anonymous\")", where)
			}
			hash = sha256.Sum256([]byte(*e.Token))
		case e.TokenSHA256 != nil:
			b, err := hex.DecodeString(*e.TokenSHA256)
			if err != nil || len(b) != sha256.Size {
				return nil, fmt.Errorf("%s: token_sha256 must be 64 hex digits (sha256sum of the token)", where)
			}
			copy(hash[:], b)
		default:
			return nil, fmt.Errorf("%s: no token or token_sha256", where)
		}
		if names[e.Name] {
			return nil, fmt.Errorf("%s: name used twice", where)
		}
		names[e.Name] = true
		for _, c := range a.clients {
			if c.hash == hash {
				return nil, fmt.Errorf("%s: token of %q used again", where, c.perms.Name())
			}
		}
		a.clients = append(a.clients, authClient{hash: hash, perms: perms})
	}
	if e := f.Anonymous; e != nil {
		if e.Token != nil || e.TokenSHA256 != nil {
			return nil, errors.New("anonymous: has no token")
		}
		if e.Name == "" {
			e.Name = "anonymous"
		}
		perms, err := e.permissions()
		if err != nil {
			return nil, fmt.Errorf("anonymous: %w", err)
		}
		a.anonymous = perms
	}
	return a, nil
}

func (e *authEntryJSON) permissions() (*core.Permissions, error) {
	if e.Name == "" {
		return nil, errors.New("no name (it is what the logs call the client)")
	}
	observe, err := parseRule(e.Observe)
	if err != nil {
		return nil, fmt.Errorf("observe: %w", err)
	}
	expose, err := parseRule(e.Expose)
	if err != nil {
		return nil, fmt.Errorf("expose: %w", err)
	}
	return core.NewPermissions(e.Name, observe, expose), nil
}

// parseRule reads "*" or {"tags": [...], "objects": [...]}; absent or null
// is nothing.
func parseRule(raw json.RawMessage) (core.Grant, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return core.Grant{}, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s != "*" {
			return core.Grant{}, fmt.Errorf(`want "*" or {"tags": [...], "objects": [...]}, got the string %q`, s)
		}
		return core.Grant{All: true}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var r ruleJSON
	if err := dec.Decode(&r); err != nil {
		return core.Grant{}, fmt.Errorf(`want "*" or {"tags": [...], "objects": [...]}: %w`, err)
	}
	return core.Grant{Tags: r.Tags, Objects: r.Objects}, nil
}

// Authorize returns the permissions of token: those of the client whose
// token it is, or the anonymous entry's for an empty token. Unknown and
// missing tokens are errors (the handshake is refused with close code
// 4002). Tokens are compared as SHA-256 digests in constant time.
func (a *Auth) Authorize(token []byte) (*core.Permissions, error) {
	if len(token) == 0 {
		if a.anonymous == nil {
			return nil, errors.New("a token is required")
		}
		return a.anonymous, nil
	}
	hash := sha256.Sum256(token)
	var found *core.Permissions
	for _, c := range a.clients { // all of them: the time does not tell which matched
		if subtle.ConstantTimeCompare(hash[:], c.hash[:]) == 1 {
			found = c.perms
		}
	}
	if found == nil {
		return nil, errors.New("unknown token")
	}
	return found, nil
}

// Clients returns the number of client entries (for logs).
func (a *Auth) Clients() int { return len(a.clients) }
