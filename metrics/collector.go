package metrics

import (
	"strings"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evsesec/evsesec/store"
)

// Label sets. Subject and fingerprint appear only on the per-certificate families, whose number
// of series is bounded by the store's own entry limit.
var (
	certLabels  = []string{"kind", "domain", "leaf_type", "subject", "fingerprint"}
	stateLabels = append(append([]string{}, certLabels...), "state")
	leafLabels  = []string{"leaf_type"}
	ocspLabels  = []string{"leaf_type", "subject", "fingerprint"}
	countLabels = []string{"domain", "kind"}
)

// The certificate states of evsesec_certificate_state: one series each, 1 for the state the
// certificate is in. "in_use" is a valid leaf that the store hands out now.
var certStates = []string{"in_use", "valid", "not_yet_valid", "expired"}

func desc(name, help string, labels []string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	certExpiry   = desc("evsesec_certificate_expiry_seconds", "Seconds until the certificate's notAfter (negative once expired).", certLabels)
	certNotAfter = desc("evsesec_certificate_not_after_timestamp_seconds", "The certificate's notAfter as a Unix time.", certLabels)
	certState    = desc("evsesec_certificate_state", "1 for the state the certificate is in now (in_use, valid, not_yet_valid, expired), 0 for the others.", stateLabels)

	leafUsable      = desc("evsesec_leaf_usable", "1 when the store has a usable leaf of this type (valid, trusted, with its key): the next TLS handshake has a certificate.", leafLabels)
	leafNeeded      = desc("evsesec_leaf_needed", "1 when the station needs a leaf of this type: always CSMS; V2G when a V2G root is installed.", leafLabels)
	leafExpiry      = desc("evsesec_leaf_expiry_seconds", "Seconds until the leaf in use of this type expires (absent when there is none).", leafLabels)
	leafChainExpiry = desc("evsesec_leaf_chain_expiry_seconds", "Seconds until the first of the leaf in use and the CAs of its chain expires (absent when there is no leaf in use).", leafLabels)

	ocspAge        = desc("evsesec_ocsp_response_age_seconds", "Seconds since thisUpdate of the cached OCSP response of a SECC leaf.", ocspLabels)
	ocspNextUpdate = desc("evsesec_ocsp_response_next_update_seconds", "Seconds until nextUpdate of the cached OCSP response of a SECC leaf (negative once stale; absent without nextUpdate).", ocspLabels)
	ocspGood       = desc("evsesec_ocsp_response_good", "1 when the cached OCSP response of a SECC leaf says good, 0 for revoked or unknown.", ocspLabels)

	storeCerts   = desc("evsesec_store_certificates", "Certificates per CA domain (kind ca) and per leaf directory (kind leaf).", countLabels)
	storeFiles   = desc("evsesec_store_files", "Certificate files per CA domain (kind ca) and per leaf directory (kind leaf).", countLabels)
	storeAnchors = desc("evsesec_store_trust_anchors", "Certificates of a CA domain that are valid now and can end a chain.", []string{"domain"})
	storeBytes   = desc("evsesec_store_bytes", "Bytes of the files the store counts against max_fs_usage_bytes.", nil)
	storeBytesL  = desc("evsesec_store_bytes_limit", "max_fs_usage_bytes (0: no limit).", nil)
	storeEntries = desc("evsesec_store_entries", "Files the store counts against max_fs_certificate_store_entries.", nil)
	storeEntrL   = desc("evsesec_store_entries_limit", "max_fs_certificate_store_entries (0: no limit).", nil)
	pendingKeys  = desc("evsesec_csr_pending_keys", "Keys of CSRs waiting for their certificate.", nil)
	gcRuns       = desc("evsesec_gc_runs_total", "Garbage collection runs since the store was opened.", nil)
	gcRemoved    = desc("evsesec_gc_removed_total", "Files garbage collection removed, by what they were.", []string{"what"})
	thresholds   = desc("evsesec_expiry_threshold_seconds", "The configured expiry thresholds (expiry_warning_days, expiry_critical_days).", []string{"level"})
)

var storeDescs = []*prometheus.Desc{
	certExpiry, certNotAfter, certState, leafUsable, leafNeeded, leafExpiry, leafChainExpiry,
	ocspAge, ocspNextUpdate, ocspGood, storeCerts, storeFiles, storeAnchors, storeBytes, storeBytesL,
	storeEntries, storeEntrL, pendingKeys, gcRuns, gcRemoved, thresholds,
}

// storeCollector reads the store's Health at scrape time: the values are always those of the
// store as it is (a file someone copied in by hand counts), and nothing runs between scrapes.
type storeCollector struct {
	st *store.Store
}

// Describe sends every family the collector makes.
func (c storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range storeDescs {
		ch <- d
	}
}

// Collect reads the store once and sends every series.
func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	h := c.st.Health()
	send := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		m, err := prometheus.NewConstMetric(d, t, v, labels...)
		if err != nil {
			m = prometheus.NewInvalidMetric(d, err)
		}
		ch <- m
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) { send(d, prometheus.GaugeValue, v, labels...) }

	// The same certificate may sit in two files of one domain; one series each.
	seen := map[string]bool{}
	for _, r := range h.Certificates {
		labels := []string{r.Kind, string(r.Domain), string(r.LeafType), labelText(r.Subject), r.Hash}
		key := strings.Join([]string{r.Kind, string(r.Domain), string(r.LeafType), r.Hash}, "\x00")
		if seen[key] {
			continue
		}
		seen[key] = true
		gauge(certExpiry, r.NotAfter.Sub(h.Time).Seconds(), labels...)
		gauge(certNotAfter, float64(r.NotAfter.Unix()), labels...)
		state := stateOf(r)
		for _, s := range certStates {
			gauge(certState, boolValue(s == state), append(labels, s)...)
		}
	}

	for _, l := range h.Leaves {
		lt := string(l.Type)
		gauge(leafUsable, boolValue(l.Status == store.InfoAccepted), lt)
		gauge(leafNeeded, boolValue(l.Needed), lt)
		gauge(storeCerts, float64(l.Certificates), string(l.Type.Domain()), "leaf")
		gauge(storeFiles, float64(l.Files), string(l.Type.Domain()), "leaf")
		if l.InUse != nil {
			gauge(leafExpiry, l.InUse.NotAfter.Sub(h.Time).Seconds(), lt)
			first := l.InUse.NotAfter
			for _, c := range l.Chain {
				if c.NotAfter.Before(first) {
					first = c.NotAfter
				}
			}
			gauge(leafChainExpiry, first.Sub(h.Time).Seconds(), lt)
		}
		for _, o := range l.OCSP {
			labels := []string{lt, labelText(o.Subject), o.Fingerprint}
			gauge(ocspAge, h.Time.Sub(o.ThisUpdate).Seconds(), labels...)
			if !o.NextUpdate.IsZero() {
				gauge(ocspNextUpdate, o.NextUpdate.Sub(h.Time).Seconds(), labels...)
			}
			gauge(ocspGood, boolValue(o.Status == "good"), labels...)
		}
	}

	for _, d := range h.Domains {
		gauge(storeCerts, float64(d.Certificates), string(d.Domain), "ca")
		gauge(storeFiles, float64(d.Files), string(d.Domain), "ca")
		gauge(storeAnchors, float64(d.Anchors), string(d.Domain))
	}
	gauge(storeBytes, float64(h.Bytes))
	gauge(storeBytesL, float64(h.MaxBytes))
	gauge(storeEntries, float64(h.Entries))
	gauge(storeEntrL, float64(h.MaxEntries))
	gauge(pendingKeys, float64(h.PendingCSRKeys))
	send(gcRuns, prometheus.CounterValue, float64(h.GC.Runs))
	for what, n := range map[string]uint64{
		"csr_key": h.GC.ExpiredCSRKeys, "leaf_file": h.GC.RemovedLeaves,
		"ocsp_response": h.GC.RemovedOCSP, "temp_file": h.GC.RemovedTempFiles,
	} {
		send(gcRemoved, prometheus.CounterValue, float64(n), what)
	}
	gauge(thresholds, h.ExpiryWarning.Seconds(), "warning")
	gauge(thresholds, h.ExpiryCritical.Seconds(), "critical")
}

// stateOf is the evsesec_certificate_state of a record.
func stateOf(r store.CertificateRecord) string {
	switch {
	case r.InUse:
		return "in_use"
	case r.Validity == "expired":
		return "expired"
	case r.Validity == "not yet valid":
		return "not_yet_valid"
	}
	return "valid"
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// maxLabelText bounds a subject label: a certificate's name is chosen by whoever made it.
const maxLabelText = 256

// labelText makes a certificate name a label value: valid UTF-8 (a label must be) and bounded.
func labelText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= maxLabelText {
		return s
	}
	cut := maxLabelText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
