// Emporium from Node over gRPC, through the gateway (Envoy): register, sign in, browse the
// catalog, add a card, quote shipping, place an order and follow it with WatchOrder until it is
// delivered. The stubs come from protos/ at run time (@grpc/proto-loader); copy this folder and
// point PROTOS at your copy of Emporium's protos/.
//
//   npm ci && node place_order.js
//
// Environment: EMPORIUM_GATEWAY (host:port, 127.0.0.1:8080), EMPORIUM_PRODUCT_QUERY (what to
// search for; empty: the newest products), PROTOS (../../protos). Exit status 0 once the order is
// DELIVERED, 1 otherwise.
"use strict";

const path = require("node:path");
const crypto = require("node:crypto");
const grpc = require("@grpc/grpc-js");
const loader = require("@grpc/proto-loader");

const GATEWAY = process.env.EMPORIUM_GATEWAY || "127.0.0.1:8080";
const PROTOS = process.env.PROTOS || path.join(__dirname, "..", "..", "protos");
const QUERY = process.env.EMPORIUM_PRODUCT_QUERY || "";
const WATCH_SECONDS = Number(process.env.EMPORIUM_WATCH_SECONDS || 180);
const ADDRESS = {
  region_code: "US",
  postal_code: "94105",
  administrative_area: "CA",
  locality: "San Francisco",
  address_lines: ["1 Market St"],
  recipients: ["Node Client"],
};

function load(domain) {
  const definition = loader.loadSync(`emporium/${domain}/v1/${domain}_service.proto`, {
    includeDirs: [PROTOS, path.join(PROTOS, "third_party")],
    keepCase: true, // field names as in the contracts (snake_case)
    enums: String,
    longs: String,
    defaults: true,
  });
  return grpc.loadPackageDefinition(definition).emporium[domain].v1;
}

const credentials = grpc.credentials.createInsecure(); // h2c to a local gateway
const users = new (load("user").UserService)(GATEWAY, credentials);
const catalog = new (load("catalog").CatalogService)(GATEWAY, credentials);
const payments = new (load("payment").PaymentService)(GATEWAY, credentials);
const shipping = new (load("shipping").ShippingService)(GATEWAY, credentials);
const orders = new (load("order").OrderService)(GATEWAY, credentials);

// A unary call as a promise, with a deadline and the caller's token.
function call(client, method, request, token) {
  const metadata = new grpc.Metadata();
  if (token) metadata.set("authorization", `Bearer ${token}`);
  const deadline = new Date(Date.now() + 15000);
  return new Promise((resolve, reject) =>
    client[method](request, metadata, { deadline }, (error, reply) =>
      error ? reject(new Error(`${method}: ${error.code} ${error.details}`)) : resolve(reply),
    ),
  );
}

// Follows the order until it is delivered or cancelled; resolves with the last state.
function follow(orderId, token) {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${token}`);
  const deadline = new Date(Date.now() + WATCH_SECONDS * 1000);
  return new Promise((resolve, reject) => {
    let state = "STATE_UNSPECIFIED";
    const stream = orders.WatchOrder({ id: orderId }, metadata, { deadline });
    stream.on("data", (message) => {
      state = message.change ? message.change.state : message.order.state;
      console.log(`order ${orderId}: ${state}`);
      if (state === "STATE_DELIVERED" || state === "STATE_CANCELLED") {
        stream.cancel();
        resolve(state);
      }
    });
    stream.on("error", (error) => {
      if (error.code !== grpc.status.CANCELLED) reject(new Error(`WatchOrder: ${error.details}`));
    });
    stream.on("end", () => resolve(state));
  });
}

async function main() {
  const email = `node-${crypto.randomUUID()}@example.com`;
  const password = "correct horse battery";
  await call(users, "Register", { email, password, display_name: "Node Client" });
  const { access_token: token } = await call(users, "Login", { email, password });
  console.log(`signed in as ${email}`);

  const { products } = await call(catalog, "ListProducts", { page_size: 10, query: QUERY });
  if (!products.length) throw new Error(`no product found for ${JSON.stringify(QUERY)}`);
  const product = products[0];
  const price = product.price;
  console.log(`browsing: ${products.length} products; buying ${product.title} (${price.units} ${price.currency_code})`);

  const card = await call(
    payments, "AddPaymentMethod",
    { request_id: crypto.randomUUID(), provider_token: "tok_visa" }, token);
  const quote = await call(shipping, "QuoteShippingOptions", {
    destination: ADDRESS,
    items: [{ product_id: product.id, quantity: 1, weight_grams: product.weight_grams || 500 }],
  }, token);
  if (!quote.shipping_options.length) throw new Error("no shipping option to the address");

  const order = await call(orders, "PlaceOrder", {
    request_id: crypto.randomUUID(),
    items: [{ product_id: product.id, quantity: 1 }],
    shipping_address: ADDRESS,
    shipping_option_id: quote.shipping_options[0].id,
    payment_method_id: card.id,
  }, token);
  console.log(`placed order ${order.id}: ${order.state}`);

  const last = await follow(order.id, token);
  if (last !== "STATE_DELIVERED") throw new Error(`order ${order.id} ended ${last}`);
  console.log(`order ${order.id} delivered`);
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(`node client: ${error.message}`);
    process.exit(1);
  },
);
