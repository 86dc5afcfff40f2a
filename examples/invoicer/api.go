package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/mail"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/go-tenancy/tenancy/examples/internal/service"
	"github.com/go-tenancy/tenancy/examples/invoicer/billing"
	"github.com/go-tenancy/tenancy/problem"
)

// billingAPI holds the customer and invoice handlers.
type billingAPI struct {
	store  billing.Store
	logger *slog.Logger
}

// tenantScheme names the OpenAPI security scheme that documents X-Tenant-ID,
// so that /docs lets a reader set it once for every call.
const tenantScheme = "tenant"

// invoicerAPI describes Invoicer's API and registers its operations on the
// handlers of a. header says whether X-Tenant-ID is accepted (documented as
// a security scheme only then).
func invoicerAPI(a *billingAPI, header bool) service.API {
	api := service.API{
		Title:   "Invoicer",
		Version: "1.0.0",
		Description: "A multi-tenant invoicing service: customers, and invoices with their line items, kept in a PostgreSQL schema per tenant " +
			"(or a SQLite file per tenant). Every call names its tenant by its host, a subdomain of the base domain " +
			"(acme.localhost:8000 is the tenant or alias acme) or a verified custom domain. Where the host names no tenant, " +
			"the X-Tenant-ID header may name it (unless the server runs with HEADER_FALLBACK=false); a host and a header naming " +
			"different tenants are refused with 403. Money is integer cents; an invoice's total is its subtotal (no tax).",
		Tags: []*huma.Tag{
			{Name: "customers", Description: "The tenant's customers."},
			{Name: "invoices", Description: "The tenant's invoices: drafts, issued, paid or void, numbered INV-0001 onwards per tenant without gaps."},
		},
		Register: a.register,
	}
	if header {
		api.SecuritySchemes = map[string]*huma.SecurityScheme{
			tenantScheme: {
				Type: "apiKey", In: "header", Name: "X-Tenant-ID",
				Description: "The tenant's identifier, e.g. acme-corp, where the host names no tenant: 3 to 56 characters of a-z, 0-9 and '-'.",
			},
		}
		api.Security = []map[string][]string{{tenantScheme: {}}}
	}
	return api
}

// register registers the customer and invoice operations.
func (a *billingAPI) register(api huma.API) {
	tenantErrors, bodyErrors := service.TenantErrors(), service.BodyErrors()
	conflict := func(errs []int) []int { return append([]int{http.StatusConflict}, errs...) }
	huma.Register(api, huma.Operation{
		OperationID: "create-customer", Method: http.MethodPost, Path: "/customers",
		Summary: "Create a customer", Tags: []string{"customers"},
		Description:   "An email address another customer of the tenant has (ignoring case) is a conflict (409); other tenants' customers do not count.",
		DefaultStatus: http.StatusCreated, Errors: conflict(bodyErrors),
	}, a.createCustomer)
	huma.Register(api, huma.Operation{
		OperationID: "list-customers", Method: http.MethodGet, Path: "/customers",
		Summary: "List the tenant's customers by name", Tags: []string{"customers"}, Errors: tenantErrors,
	}, a.listCustomers)
	huma.Register(api, huma.Operation{
		OperationID: "get-customer", Method: http.MethodGet, Path: "/customers/{id}",
		Summary: "Get a customer", Tags: []string{"customers"}, Errors: tenantErrors,
	}, a.getCustomer)
	huma.Register(api, huma.Operation{
		OperationID: "update-customer", Method: http.MethodPatch, Path: "/customers/{id}",
		Summary: "Change a customer's name or email", Tags: []string{"customers"}, Errors: conflict(bodyErrors),
	}, a.updateCustomer)
	huma.Register(api, huma.Operation{
		OperationID: "delete-customer", Method: http.MethodDelete, Path: "/customers/{id}",
		Summary: "Delete a customer", Tags: []string{"customers"},
		Description:   "A customer with invoices cannot be deleted (409): void the invoices instead, they stay on record.",
		DefaultStatus: http.StatusNoContent, Errors: conflict(tenantErrors),
	}, a.deleteCustomer)

	huma.Register(api, huma.Operation{
		OperationID: "create-invoice", Method: http.MethodPost, Path: "/invoices",
		Summary: "Create a draft invoice", Tags: []string{"invoices"},
		Description: "The invoice gets the tenant's next number and its totals from its line items. A customer_id that names no customer " +
			"of the tenant (another tenant's included) is refused with 422 naming customer_id.",
		DefaultStatus: http.StatusCreated, Errors: bodyErrors,
	}, a.createInvoice)
	huma.Register(api, huma.Operation{
		OperationID: "list-invoices", Method: http.MethodGet, Path: "/invoices",
		Summary: "List the tenant's invoices, highest number first", Tags: []string{"invoices"}, Errors: tenantErrors,
	}, a.listInvoices)
	huma.Register(api, huma.Operation{
		OperationID: "get-invoice", Method: http.MethodGet, Path: "/invoices/{id}",
		Summary: "Get an invoice with its line items", Tags: []string{"invoices"}, Errors: tenantErrors,
	}, a.getInvoice)
	huma.Register(api, huma.Operation{
		OperationID: "update-invoice", Method: http.MethodPatch, Path: "/invoices/{id}",
		Summary: "Change a draft invoice's due date or line items", Tags: []string{"invoices"},
		Description: "Only drafts can be changed: an issued, paid or void invoice is a conflict (409).",
		Errors:      conflict(bodyErrors),
	}, a.updateInvoice)
	for _, tr := range []struct {
		action         billing.Action
		summary, descr string
	}{
		{billing.ActionIssue, "Issue a draft invoice", "Moves a draft to issued; from any other status, 409."},
		{billing.ActionPay, "Mark an issued invoice paid", "Moves an issued invoice to paid; from any other status, 409."},
		{billing.ActionVoid, "Void an invoice", "Moves a draft or issued invoice to void; a paid or void one is a conflict (409)."},
	} {
		action := tr.action
		huma.Register(api, huma.Operation{
			OperationID: string(action) + "-invoice", Method: http.MethodPost, Path: "/invoices/{id}/" + string(action),
			Summary: tr.summary, Description: tr.descr, Tags: []string{"invoices"}, Errors: conflict(tenantErrors),
		}, func(ctx context.Context, in *idInput) (*invoiceOutput, error) {
			return a.transition(ctx, in.ID, action)
		})
	}
}

// customerInput is the body of POST /customers.
type customerInput struct {
	Name  string `json:"name" minLength:"1" maxLength:"200" doc:"The customer's name, 1 to 200 characters once trimmed."`
	Email string `json:"email" minLength:"3" maxLength:"254" doc:"The customer's email address, such as bob@example.com: unique within the tenant, ignoring case."`
}

// Resolve checks what the schema says loosely: a plain address, no
// display name.
func (in *customerInput) Resolve(huma.Context) []error {
	var errs []error
	if in.Email != "" && !plainEmail(in.Email) {
		errs = append(errs, emailError())
	}
	if in.Name != "" && strings.TrimSpace(in.Name) == "" {
		errs = append(errs, &huma.ErrorDetail{Location: "body.name", Message: "must not be blank"})
	}
	return append(errs, nulErrors(map[string]string{"body.name": in.Name, "body.email": in.Email})...)
}

// customerPatchInput is the body of PATCH /customers/{id}.
type customerPatchInput struct {
	Name  *string `json:"name,omitempty" minLength:"1" maxLength:"200" doc:"The new name. Omit it to keep the name."`
	Email *string `json:"email,omitempty" minLength:"3" maxLength:"254" doc:"The new email address, unique within the tenant. Omit it to keep the address."`
}

// Resolve checks the address and the name as customerInput does.
func (in *customerPatchInput) Resolve(huma.Context) []error {
	var errs []error
	fields := map[string]string{}
	if in.Email != nil {
		if !plainEmail(*in.Email) {
			errs = append(errs, emailError())
		}
		fields["body.email"] = *in.Email
	}
	if in.Name != nil {
		if strings.TrimSpace(*in.Name) == "" {
			errs = append(errs, &huma.ErrorDetail{Location: "body.name", Message: "must not be blank"})
		}
		fields["body.name"] = *in.Name
	}
	return append(errs, nulErrors(fields)...)
}

// plainEmail reports whether s is one plain address (bob@example.com), not
// a list or a display name with an address.
func plainEmail(s string) bool {
	s = strings.TrimSpace(s)
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && a.Address == s && strings.Contains(s[strings.LastIndexByte(s, '@')+1:], ".")
}

func emailError() error {
	return &huma.ErrorDetail{Location: "body.email", Message: "must be an email address such as bob@example.com"}
}

func nulErrors(fields map[string]string) []error {
	var errs []error
	for loc, v := range fields {
		if strings.ContainsRune(v, 0) {
			errs = append(errs, &huma.ErrorDetail{Location: loc, Message: "must not contain NUL characters"})
		}
	}
	return errs
}

// lineItemInput is one line item of an invoice's body.
type lineItemInput struct {
	Description    string `json:"description" minLength:"1" maxLength:"500" doc:"What is billed, 1 to 500 characters once trimmed."`
	Quantity       int64  `json:"quantity" minimum:"1" doc:"How many, a whole number of at least 1."`
	UnitPriceCents int64  `json:"unit_price_cents" minimum:"0" doc:"The price of one, in cents: a whole number of at least 0."`
}

// invoiceInput is the body of POST /invoices.
type invoiceInput struct {
	CustomerID string          `json:"customer_id" doc:"The ID of one of the tenant's customers (a UUID)."`
	Currency   string          `json:"currency,omitempty" pattern:"^[A-Z]{3}$" default:"USD" doc:"ISO 4217 currency code. Default USD."`
	DueDate    string          `json:"due_date" format:"date" doc:"When payment is due, YYYY-MM-DD."`
	LineItems  []lineItemInput `json:"line_items" minItems:"1" maxItems:"100" doc:"1 to 100 line items, in order."`
}

// Resolve refuses NUL characters, which PostgreSQL cannot store.
func (in *invoiceInput) Resolve(huma.Context) []error {
	return itemNulErrors(in.LineItems)
}

func itemNulErrors(items []lineItemInput) []error {
	var errs []error
	for i, it := range items {
		if strings.ContainsRune(it.Description, 0) {
			errs = append(errs, &huma.ErrorDetail{Location: "body.line_items[" + strconv.Itoa(i) + "].description", Message: "must not contain NUL characters"})
		}
	}
	return errs
}

// invoicePatchInput is the body of PATCH /invoices/{id}.
type invoicePatchInput struct {
	DueDate   *string         `json:"due_date,omitempty" format:"date" doc:"The new due date, YYYY-MM-DD. Omit it to keep the date."`
	LineItems []lineItemInput `json:"line_items,omitempty" minItems:"1" maxItems:"100" doc:"The new line items, replacing all of them (and so the totals). Omit them to keep them."`
}

func newItems(items []lineItemInput) []billing.NewLineItem {
	if items == nil {
		return nil
	}
	out := make([]billing.NewLineItem, len(items))
	for i, it := range items {
		out[i] = billing.NewLineItem{Description: it.Description, Quantity: it.Quantity, UnitPriceCents: it.UnitPriceCents}
	}
	return out
}

type createCustomerInput struct {
	Body customerInput
}

type customerOutput struct {
	Body billing.Customer
}

type createCustomerOutput struct {
	Location string `header:"Location" doc:"The customer's URL."`
	Body     billing.Customer
}

type pageInput struct {
	Limit  int `query:"limit" minimum:"1" maximum:"100" default:"50" doc:"How many to return, 1 to 100."`
	Offset int `query:"offset" minimum:"0" default:"0" doc:"How many to skip."`
}

type listCustomersOutput struct {
	Body []billing.Customer
}

type idInput struct {
	ID string `path:"id" doc:"The ID, a UUID. A value that is not a UUID names nothing (404)."`
}

type updateCustomerInput struct {
	ID      string `path:"id" doc:"The customer's ID."`
	Body    customerPatchInput
	RawBody []byte
}

// Resolve refuses explicit nulls: a field can be changed, never removed.
func (in *updateCustomerInput) Resolve(huma.Context) []error {
	return nullErrors(in.RawBody, "name", "email")
}

// nullErrors reports the named fields of body that are an explicit null,
// which the decoded body cannot tell from absent ones.
func nullErrors(body []byte, names ...string) []error {
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil {
		return nil // not an object: the schema reports it
	}
	var errs []error
	for _, name := range names {
		if v, ok := fields[name]; ok && string(v) == "null" {
			errs = append(errs, &huma.ErrorDetail{Location: "body." + name, Message: "must not be null: omit the field to keep it"})
		}
	}
	return errs
}

type noContent struct{}

type createInvoiceInput struct {
	Body invoiceInput
}

type invoiceOutput struct {
	Body billing.Invoice
}

type createInvoiceOutput struct {
	Location string `header:"Location" doc:"The invoice's URL."`
	Body     billing.Invoice
}

type listInvoicesInput struct {
	Status string `query:"status" enum:"draft,issued,paid,void" doc:"List only invoices in this status. Default: all."`
	Limit  int    `query:"limit" minimum:"1" maximum:"100" default:"50" doc:"How many to return, 1 to 100."`
	Offset int    `query:"offset" minimum:"0" default:"0" doc:"How many of the highest-numbered to skip."`
}

type listInvoicesOutput struct {
	Body []billing.Invoice
}

type updateInvoiceInput struct {
	ID      string `path:"id" doc:"The invoice's ID."`
	Body    invoicePatchInput
	RawBody []byte
}

// Resolve refuses explicit nulls and NUL characters.
func (in *updateInvoiceInput) Resolve(huma.Context) []error {
	return append(nullErrors(in.RawBody, "due_date", "line_items"), itemNulErrors(in.Body.LineItems)...)
}

func (a *billingAPI) createCustomer(ctx context.Context, in *createCustomerInput) (*createCustomerOutput, error) {
	t, err := service.RequireTenant(ctx)
	if err != nil {
		return nil, err
	}
	c, err := a.store.CreateCustomer(ctx, t, billing.NewCustomer{Name: in.Body.Name, Email: in.Body.Email})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &createCustomerOutput{Location: "/customers/" + c.ID, Body: c}, nil
}

func (a *billingAPI) listCustomers(ctx context.Context, in *pageInput) (*listCustomersOutput, error) {
	t, err := service.RequireTenant(ctx)
	if err != nil {
		return nil, err
	}
	cs, err := a.store.ListCustomers(ctx, t, billing.Page{Limit: in.Limit, Offset: in.Offset})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	if cs == nil {
		cs = []billing.Customer{} // an empty tenant gets [], not null
	}
	return &listCustomersOutput{Body: cs}, nil
}

func (a *billingAPI) getCustomer(ctx context.Context, in *idInput) (*customerOutput, error) {
	t, err := service.RequireTenant(ctx)
	if err != nil {
		return nil, err
	}
	c, err := a.store.GetCustomer(ctx, t, in.ID)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &customerOutput{Body: c}, nil
}

func (a *billingAPI) updateCustomer(ctx context.Context, in *updateCustomerInput) (*customerOutput, error) {
	t, err := service.RequireTenant(ctx)
	if err != nil {
		return nil, err
	}
	c, err := a.store.UpdateCustomer(ctx, t, in.ID, billing.CustomerPatch{Name: in.Body.Name, Email: in.Body.Email})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &customerOutput{Body: c}, nil
}

func (a *billingAPI) deleteCustomer(ctx context.Context, in *idInput) (*noContent, error) {
	t, err := service.RequireTenant(ctx)
	if err != nil {
		return nil, err
	}
	if err := a.store.DeleteCustomer(ctx, t, in.ID); err != nil {
		return nil, a.fail(ctx, err)
	}
	return &noContent{}, nil
}

func (a *billingAPI) createInvoice(ctx context.Context, in *createInvoiceInput) (*createInvoiceOutput, error) {
	t, err := service.RequireTenant(ctx)
	if err != nil {
		return nil, err
	}
	inv, err := a.store.CreateInvoice(ctx, t, billing.NewInvoice{
		CustomerID: in.Body.CustomerID,
		Currency:   in.Body.Currency,
		DueDate:    in.Body.DueDate,
		LineItems:  newItems(in.Body.LineItems),
	})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &createInvoiceOutput{Location: "/invoices/" + inv.ID, Body: inv}, nil
}

func (a *billingAPI) listInvoices(ctx context.Context, in *listInvoicesInput) (*listInvoicesOutput, error) {
	t, err := service.RequireTenant(ctx)
	if err != nil {
		return nil, err
	}
	invs, err := a.store.ListInvoices(ctx, t, billing.InvoiceFilter{
		Status: billing.Status(in.Status),
		Page:   billing.Page{Limit: in.Limit, Offset: in.Offset},
	})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	if invs == nil {
		invs = []billing.Invoice{}
	}
	return &listInvoicesOutput{Body: invs}, nil
}

func (a *billingAPI) getInvoice(ctx context.Context, in *idInput) (*invoiceOutput, error) {
	t, err := service.RequireTenant(ctx)
	if err != nil {
		return nil, err
	}
	inv, err := a.store.GetInvoice(ctx, t, in.ID)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &invoiceOutput{Body: inv}, nil
}

func (a *billingAPI) updateInvoice(ctx context.Context, in *updateInvoiceInput) (*invoiceOutput, error) {
	t, err := service.RequireTenant(ctx)
	if err != nil {
		return nil, err
	}
	inv, err := a.store.UpdateDraft(ctx, t, in.ID, billing.DraftPatch{DueDate: in.Body.DueDate, LineItems: newItems(in.Body.LineItems)})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &invoiceOutput{Body: inv}, nil
}

func (a *billingAPI) transition(ctx context.Context, id string, action billing.Action) (*invoiceOutput, error) {
	t, err := service.RequireTenant(ctx)
	if err != nil {
		return nil, err
	}
	inv, err := a.store.Transition(ctx, t, id, action)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &invoiceOutput{Body: inv}, nil
}

// fail maps a billing error to its response in one place, and logs what is
// not the client's doing (with the tenant, which ctx carries). No message
// repeats the request's input.
func (a *billingAPI) fail(ctx context.Context, err error) error {
	var (
		field *billing.FieldError
		state *billing.StateError
	)
	switch {
	case errors.As(err, &field):
		d := problem.New(problem.SlugInvalidField, http.StatusUnprocessableEntity, "Invalid field")
		d.Detail = "One or more fields are invalid."
		d.Errors = []problem.FieldDetail{{Location: "body." + field.Field, Message: field.Message}}
		return service.Problem(d)
	case errors.Is(err, billing.ErrCustomerNotFound):
		return notFound("The tenant has no customer with that ID.")
	case errors.Is(err, billing.ErrInvoiceNotFound):
		return notFound("The tenant has no invoice with that ID.")
	case errors.Is(err, billing.ErrEmailTaken):
		return conflictProblem("Another customer of the tenant has this email address.")
	case errors.Is(err, billing.ErrCustomerHasInvoices):
		return conflictProblem("The customer has invoices, so it cannot be deleted.")
	case errors.As(err, &state):
		// Built from the status and the action, never from input.
		return conflictProblem("The invoice is " + string(state.Status) + ": it cannot be " + pastTense(state.Action) + ".")
	}
	a.logger.ErrorContext(ctx, "billing request failed", slog.Any("error", err))
	return service.Problem(problem.FromError(err))
}

func pastTense(action string) string {
	switch action {
	case "issue":
		return "issued"
	case "pay":
		return "paid"
	case "void":
		return "voided"
	}
	return "edited"
}

func notFound(detail string) error {
	return service.Problem(problem.Details{Type: "about:blank", Title: "Not Found", Status: http.StatusNotFound, Detail: detail})
}

func conflictProblem(detail string) error {
	return service.Problem(problem.Details{Type: "about:blank", Title: "Conflict", Status: http.StatusConflict, Detail: detail})
}
