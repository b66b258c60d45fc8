// vcsim for Machine's tests: govmomi's simulator (Debian's golang-github-vmware-govmomi-dev)
// with a VPX inventory, a required login, and one test hook a real vCenter has no need of:
//
//   POST /machine-test/datastore-free?name=DS&bytes=N   set a datastore's reported free space
//
// With -tlscert/-tlskey it serves that certificate (the tests make one signed by their own CA:
// the simulator's built-in certificate has a key too weak for OpenSSL's default security level).
// It prints one line, "URL CERTFILE", once it listens, then serves until SIGTERM/SIGINT.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/vmware/govmomi/simulator"
	_ "github.com/vmware/govmomi/vapi/simulator" // the vAPI REST endpoints (content libraries)
)

func main() {
	listen := flag.String("l", "127.0.0.1:0", "listen address")
	useTLS := flag.Bool("tls", true, "serve TLS")
	user := flag.String("u", "user:pass", "username:password required for Login")
	certFile := flag.String("tlscert", "", "PEM certificate to serve (default: the simulator's built-in one)")
	keyFile := flag.String("tlskey", "", "PEM key of -tlscert")
	flag.Parse()

	model := simulator.VPX()
	model.Datacenter = 1
	model.Cluster = 1
	model.Host = 1
	model.ClusterHost = 2
	model.Machine = 2
	if err := model.Create(); err != nil {
		log.Fatal(err)
	}
	u, err := url.Parse("https://" + *user + "@x")
	if err != nil {
		log.Fatal(err)
	}
	pw, _ := u.User.Password()
	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(u.User.Username(), pw)}
	if *useTLS {
		model.Service.TLS = new(tls.Config)
		if *certFile != "" {
			pair, err := tls.LoadX509KeyPair(*certFile, *keyFile)
			if err != nil {
				log.Fatal(err)
			}
			model.Service.TLS.Certificates = []tls.Certificate{pair}
		}
	}
	model.Service.RegisterEndpoints = true
	model.Service.HandleFunc("/machine-test/datastore-free", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		n, err := strconv.ParseInt(r.URL.Query().Get("bytes"), 10, 64)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		name := r.URL.Query().Get("name")
		for _, obj := range simulator.Map.All("Datastore") {
			ds := obj.(*simulator.Datastore)
			if ds.Name == name {
				simulator.Map.WithLock(ds, func() {
					ds.Summary.FreeSpace = n
					ds.Info.GetDatastoreInfo().FreeSpace = n
				})
				fmt.Fprintln(w, "ok")
				return
			}
		}
		http.Error(w, "no datastore "+name, http.StatusNotFound)
	})
	s := model.Service.NewServer()
	cert := ""
	if *useTLS {
		if cert, err = s.CertificateFile(); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Printf("%s %s\n", s.URL.String(), cert)
	os.Stdout.Sync()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	model.Remove()
	s.Close()
}
