package customdomain_test

import (
	"context"
	"fmt"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/customdomain"
	"github.com/go-tenancy/tenancy/store/memstore"
)

func ExampleManager() {
	ctx := context.Background()
	store := memstore.New()
	acme, _ := store.Create(ctx, &tenancy.Tenant{Identifier: "acme-corp", Name: "Acme"})
	dns := &fakeDNS{records: map[string][]string{}} // in production: leave Resolver nil, or a *net.Resolver
	m := customdomain.Manager{Store: store, BaseDomain: "example.com", Resolver: dns}

	_, err := m.Add(ctx, acme.ID, "acme.example.com")
	fmt.Println(err)

	d, _ := m.Add(ctx, acme.ID, "app.acme.com")
	fmt.Println("publish a TXT record at", customdomain.ChallengeName(d.Name))
	_, err = m.Verify(ctx, acme.ID, "app.acme.com")
	fmt.Println(err)

	dns.publish(customdomain.ChallengeName(d.Name), d.Token) // the domain's owner publishes the token
	d, _ = m.Verify(ctx, acme.ID, "app.acme.com")
	t, _ := store.GetByDomain(ctx, "app.acme.com")
	fmt.Println(d.Verified(), t.Identifier)
	// Output:
	// invalid tenant domain: a custom domain cannot be the base domain or a name under it: those are tenants' subdomains (use an alias)
	// publish a TXT record at _tenancy-challenge.app.acme.com
	// customdomain: verify app.acme.com: no TXT record at _tenancy-challenge.app.acme.com: domain not verified
	// true acme-corp
}
