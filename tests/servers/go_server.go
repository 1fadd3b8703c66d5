// Go's net/http for the RED tests: go_server PORT CERT KEY (HTTPS through crypto/tls).
// /sleep/MS answers after MS ms, /status/N with status N, anything else 200.
// Only the standard library: the tests build it with Debian's golang-go and no network.
package main

import (
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

func handler(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	status := http.StatusOK
	if len(parts) > 1 {
		n, err := strconv.Atoi(parts[1])
		if err == nil && parts[0] == "sleep" {
			time.Sleep(time.Duration(n) * time.Millisecond)
		} else if err == nil && parts[0] == "status" {
			status = n
		}
	}
	w.Header().Set("Content-Length", "3")
	w.WriteHeader(status)
	w.Write([]byte("ok\n"))
}

func main() {
	server := &http.Server{Addr: "127.0.0.1:" + os.Args[1], Handler: http.HandlerFunc(handler)}
	if err := server.ListenAndServeTLS(os.Args[2], os.Args[3]); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
}
