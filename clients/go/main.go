// Command place-order is Emporium from Go over gRPC, through the gateway (Envoy): register, sign
// in, browse the catalog, add a card, quote shipping, place an order and follow it with
// WatchOrder until it is delivered. The stubs are generated from protos/ with protoc-gen-go and
// protoc-gen-go-grpc (`make clients` writes them into gen/).
//
//	go run .                      # EMPORIUM_GATEWAY=127.0.0.1:8080, EMPORIUM_PRODUCT_QUERY=""
//
// Exit status 0 once the order is DELIVERED, 1 otherwise.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"google.golang.org/genproto/googleapis/type/postaladdress"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	catalogv1 "emporium.example/client/gen/emporium/catalog/v1"
	orderv1 "emporium.example/client/gen/emporium/order/v1"
	paymentv1 "emporium.example/client/gen/emporium/payment/v1"
	shippingv1 "emporium.example/client/gen/emporium/shipping/v1"
	userv1 "emporium.example/client/gen/emporium/user/v1"
)

var address = &postaladdress.PostalAddress{
	RegionCode:         "US",
	PostalCode:         "94105",
	AdministrativeArea: "CA",
	Locality:           "San Francisco",
	AddressLines:       []string{"1 Market St"},
	Recipients:         []string{"Go Client"},
}

func env(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}

// uuid4 is a random (version 4) UUID for the request_id idempotency keys.
func uuid4() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func run() error {
	conn, err := grpc.NewClient(env("EMPORIUM_GATEWAY", "127.0.0.1:8080"),
		grpc.WithTransportCredentials(insecure.NewCredentials())) // h2c to a local gateway
	if err != nil {
		return err
	}
	defer conn.Close()
	users := userv1.NewUserServiceClient(conn)
	catalog := catalogv1.NewCatalogServiceClient(conn)
	payments := paymentv1.NewPaymentServiceClient(conn)
	shipping := shippingv1.NewShippingServiceClient(conn)
	orders := orderv1.NewOrderServiceClient(conn)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	email, password := "go-"+uuid4()+"@example.com", "correct horse battery"
	if _, err := users.Register(ctx, &userv1.RegisterRequest{
		Email: email, Password: password, DisplayName: "Go Client"}); err != nil {
		return fmt.Errorf("Register: %w", err)
	}
	tokens, err := users.Login(ctx, &userv1.LoginRequest{Email: email, Password: password})
	if err != nil {
		return fmt.Errorf("Login: %w", err)
	}
	fmt.Println("signed in as", email)
	// Every further call carries the access token.
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tokens.GetAccessToken())

	listed, err := catalog.ListProducts(ctx, &catalogv1.ListProductsRequest{
		PageSize: 10, Query: os.Getenv("EMPORIUM_PRODUCT_QUERY")})
	if err != nil {
		return fmt.Errorf("ListProducts: %w", err)
	}
	if len(listed.GetProducts()) == 0 {
		return errors.New("no product found")
	}
	product := listed.GetProducts()[0]
	fmt.Printf("browsing: %d products; buying %s (%d %s)\n", len(listed.GetProducts()),
		product.GetTitle(), product.GetPrice().GetUnits(), product.GetPrice().GetCurrencyCode())

	card, err := payments.AddPaymentMethod(ctx, &paymentv1.AddPaymentMethodRequest{
		RequestId: uuid4(), ProviderToken: "tok_visa"})
	if err != nil {
		return fmt.Errorf("AddPaymentMethod: %w", err)
	}
	weight := product.GetWeightGrams()
	if weight == 0 {
		weight = 500
	}
	quote, err := shipping.QuoteShippingOptions(ctx, &shippingv1.QuoteShippingOptionsRequest{
		Destination: address,
		Items: []*shippingv1.QuoteShippingOptionsRequest_Item{
			{ProductId: product.GetId(), Quantity: 1, WeightGrams: weight}},
	})
	if err != nil {
		return fmt.Errorf("QuoteShippingOptions: %w", err)
	}
	if len(quote.GetShippingOptions()) == 0 {
		return errors.New("no shipping option to the address")
	}

	order, err := orders.PlaceOrder(ctx, &orderv1.PlaceOrderRequest{
		RequestId:        uuid4(),
		Items:            []*orderv1.PlaceOrderRequest_Item{{ProductId: product.GetId(), Quantity: 1}},
		ShippingAddress:  address,
		ShippingOptionId: quote.GetShippingOptions()[0].GetId(),
		PaymentMethodId:  card.GetId(),
	})
	if err != nil {
		return fmt.Errorf("PlaceOrder: %w", err)
	}
	fmt.Printf("placed order %s: %s\n", order.GetId(), order.GetState())

	stream, err := orders.WatchOrder(ctx, &orderv1.WatchOrderRequest{Id: order.GetId()})
	if err != nil {
		return fmt.Errorf("WatchOrder: %w", err)
	}
	state := order.GetState()
	for {
		message, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("WatchOrder: %w", err)
		}
		state = message.GetOrder().GetState()
		if message.GetChange() != nil {
			state = message.GetChange().GetState()
		}
		fmt.Printf("order %s: %s\n", order.GetId(), state)
		if state == orderv1.Order_STATE_DELIVERED || state == orderv1.Order_STATE_CANCELLED {
			break
		}
	}
	if state != orderv1.Order_STATE_DELIVERED {
		return fmt.Errorf("order %s ended %s", order.GetId(), state)
	}
	fmt.Printf("order %s delivered\n", order.GetId())
	return nil
}

func main() {
	if err := run(); err != nil {
		log.SetFlags(0)
		log.Fatalf("go client: %v", err)
	}
}
