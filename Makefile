# evsesec — see README.md.
GO        ?= go
BIN       ?= bin/evsesec
DEMO_DIR  ?= demo-store
# Packages whose tests also run under the race detector (the store and everything that serves it).
RACE_PKGS ?= ./store/... ./api/... ./certs/... ./tlsconf/...

.PHONY: all build test vet demo clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/evsesec

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }

# All tests, then the race detector on the store and service packages.
test: vet
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -race $(RACE_PKGS)
	CGO_ENABLED=1 $(GO) test -count=1 -tags pkcs11 ./keys/pkcs11/

# A demo store with the test PKI, listed through the interface.
demo: build
	rm -rf $(DEMO_DIR)
	$(BIN) pki init $(DEMO_DIR) >/dev/null
	@echo "== demo store in $(DEMO_DIR)"
	@echo "== get_installed_certificates (all types)"
	$(BIN) call --certs $(DEMO_DIR) get_installed_certificates '{"certificate_types":["V2GRootCertificate","MORootCertificate","CSMSRootCertificate","MFRootCertificate","V2GCertificateChain"]}'
	@echo "== verify the SECC chain against the V2G domain"
	$(BIN) verify --certs $(DEMO_DIR) --type V2G $(DEMO_DIR)/client/cso/CPO_CERT_CHAIN.pem
	@echo "== is a V2G root installed?"
	$(BIN) call --certs $(DEMO_DIR) is_ca_certificate_installed '{"certificate_type":"V2G"}'
	@echo "== OpenSSL-ready trust file of the CSMS domain"
	$(BIN) call --certs $(DEMO_DIR) get_verify_file '{"certificate_type":"CSMS"}'

clean:
	rm -rf bin $(DEMO_DIR)
