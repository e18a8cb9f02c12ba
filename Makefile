# evsesec — see README.md.
GO        ?= go
BIN       ?= bin/evsesec
DEMO_DIR  ?= demo-store
DEMO_PORT ?= 18830
DEMO_LOG  ?= bin/demo-serve.log
# Packages whose tests also run under the race detector (the store and everything that serves it).
RACE_PKGS ?= ./store/... ./api/... ./certs/... ./tlsconf/... ./everest/... ./metrics/...

.PHONY: all build test vet demo bench clean

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
	CGO_ENABLED=1 $(GO) test -count=1 -tags pkcs11 -run PKCS11 ./store/

# A demo store with the test PKI, served by `evsesec serve` with the embedded MQTT broker on
# 127.0.0.1:$(DEMO_PORT); a few calls go over MQTT the way an EVerest module makes them. The
# service keeps serving until Ctrl-C; its log is in $(DEMO_LOG).
demo: build
	rm -rf $(DEMO_DIR)
	$(BIN) pki init $(DEMO_DIR) >/dev/null
	@echo "== demo store in $(DEMO_DIR); evsesec serve on 127.0.0.1:$(DEMO_PORT) (log: $(DEMO_LOG))"
	@$(BIN) serve --certs $(DEMO_DIR) --listen 127.0.0.1:$(DEMO_PORT) 2>$(DEMO_LOG) & pid=$$!; \
	trap 'kill $$pid 2>/dev/null; wait $$pid; exit 0' INT TERM; \
	call="$(BIN) call --broker tcp://127.0.0.1:$(DEMO_PORT)"; \
	up=; for i in $$(seq 50); do \
	  if $$call --timeout 1s is_ca_certificate_installed '{"certificate_type":"V2G"}' >/dev/null 2>&1; then up=1; break; fi; sleep 0.2; \
	done; \
	if [ -z "$$up" ]; then echo "evsesec serve did not come up:"; cat $(DEMO_LOG); kill $$pid 2>/dev/null; exit 1; fi; \
	echo "== install_ca_certificate: CPO Sub-CA 1 into the V2G domain"; \
	$$call install_ca_certificate "{\"certificate\":\"$$(awk 'BEGIN{ORS="\\n"}1' $(DEMO_DIR)/pki/CPO_SUB_CA1.pem)\",\"certificate_type\":\"V2G\"}"; \
	echo "== get_leaf_certificate_info: the SECC leaf, with OCSP data"; \
	$$call get_leaf_certificate_info '{"certificate_type":"V2G","encoding":"PEM","include_ocsp":true}'; \
	echo "== verify_certificate: the SECC chain against the V2G domain"; \
	$$call verify_certificate "{\"certificate_chain\":\"$$(awk 'BEGIN{ORS="\\n"}1' $(DEMO_DIR)/client/cso/CPO_CERT_CHAIN.pem)\",\"certificate_types\":[\"V2G\"]}"; \
	echo "== is_ca_certificate_installed: MO"; \
	$$call is_ca_certificate_installed '{"certificate_type":"MO"}'; \
	echo "== serving on tcp://127.0.0.1:$(DEMO_PORT) (evsesec call --broker tcp://127.0.0.1:$(DEMO_PORT) ...); Ctrl-C stops"; \
	wait $$pid

# Benchmarks of every command on stores of 10, 200 and 2,000 leaves; writes bench/RESULTS.md.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 2 -timeout 60m ./bench/ | tee bench/raw.txt
	$(GO) run ./bench/report < bench/raw.txt > bench/RESULTS.md
	@echo "wrote bench/RESULTS.md"

clean:
	rm -rf bin $(DEMO_DIR)
