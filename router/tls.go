package router

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLSFiles names the PEM files of one side of a TLS connection.
type TLSFiles struct {
	// Cert and Key are this side's certificate chain and private key:
	// required for a server, optional for a client (mutual TLS).
	Cert, Key string
	// CA is a bundle of certificate authorities: a server requires and
	// verifies client certificates signed by them (mutual TLS); a client
	// verifies the server with them instead of the system roots.
	CA string
}

// IsZero reports whether no file is named.
func (f TLSFiles) IsZero() bool { return f == TLSFiles{} }

// ServerConfig loads a server TLS configuration (TLS 1.2 or later).
func (f TLSFiles) ServerConfig() (*tls.Config, error) {
	if f.Cert == "" || f.Key == "" {
		return nil, errors.New("router: TLS needs both a certificate and a key")
	}
	cfg, err := f.load()
	if err != nil {
		return nil, err
	}
	if cfg.RootCAs != nil {
		cfg.ClientCAs, cfg.RootCAs = cfg.RootCAs, nil
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// ClientConfig loads a client TLS configuration for wss:// upstreams.
func (f TLSFiles) ClientConfig() (*tls.Config, error) {
	if (f.Cert == "") != (f.Key == "") {
		return nil, errors.New("router: a client certificate needs both a certificate and a key")
	}
	return f.load()
}

func (f TLSFiles) load() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.Cert != "" {
		pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("router: TLS certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if f.CA != "" {
		pem, err := os.ReadFile(f.CA)
		if err != nil {
			return nil, fmt.Errorf("router: TLS CA bundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("router: TLS CA bundle %s: no certificate found", f.CA)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}
