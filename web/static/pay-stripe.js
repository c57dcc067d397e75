// The Stripe pay page: the Payment Element (cards, Apple Pay, Google Pay,
// Klarna) in Stripe's own frames, then the payment confirmed on our server.
//
// Pay: elements.submit() checks the fields (and shows a wallet's sheet with
// the Element's amount), createConfirmationToken() turns them into a token,
// and we post the token to /r/<token>/pay with the form's CSRF token and the
// total the client approved (the Element's amount). The server reads the
// card's type and confirms the request's one PaymentIntent only if the fee
// rules give that same total. Otherwise nothing is charged and it answers
// "confirm_amount" with this card's total: we show it with a confirm and a
// change-card choice; on confirm, elements.update() sets the Element (and so
// the next wallet sheet) to that total and we pay again, so the sheet, the
// Element and the PaymentIntent always say the same amount. Other answers:
// "succeeded"/"processing" -> the thank-you page; "requires_action"
// (3-D Secure, Klarna) -> Stripe.js takes that step, then the thank-you page;
// "declined"/"error" -> show the message and let the client try again.
// Everything it shows comes from the server or data- attributes, in the
// page's language.
(function () {
  "use strict";
  var form = document.getElementById("payment-form");
  if (!form) { return; }
  var button = document.getElementById("pay-button");
  var errorBox = document.getElementById("pay-error");
  var data = form.dataset;
  var label = button.textContent;
  var panel = document.getElementById("card-total");
  var confirmButton = document.getElementById("confirm-total");
  var changeButton = document.getElementById("change-card");
  // The amount the page offers first (the request's), and the total the
  // Element now shows, which the client approves by paying.
  var baseAmount = parseInt(data.amount, 10);
  var approved = baseAmount;
  var offered = null;

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }
  function busy(on) {
    button.disabled = on;
    button.textContent = on ? data.msgPaying : label;
  }

  if (typeof window.Stripe !== "function") {
    showError(data.msgLoadFailed);
    return;
  }
  var options = { locale: data.locale };
  if (data.account) { options.stripeAccount = data.account; }
  var stripe = window.Stripe(data.publishableKey, options);
  var elements = stripe.elements({
    mode: "payment",
    amount: baseAmount,
    currency: data.currency,
    appearance: { theme: "stripe", variables: { colorPrimary: "#1f5f8b", borderRadius: "8px" } }
  });
  var payment = elements.create("payment", {
    defaultValues: { billingDetails: { email: data.email } }
  });
  payment.on("ready", function () { button.disabled = false; });
  payment.on("loaderror", function () { showError(data.msgLoadFailed); });
  payment.mount("#payment-element");

  async function post(token) {
    var body = new URLSearchParams();
    body.set("csrf_token", form.elements.csrf_token.value);
    body.set("confirmation_token", token);
    body.set("approved_total", String(approved));
    if (form.elements.province) { body.set("province", form.elements.province.value); }
    var answer = await fetch(form.action, {
      method: "POST", body: body, credentials: "same-origin", headers: { "Accept": "application/json" }
    });
    return answer.json();
  }

  function showTotal(result) {
    offered = result.total_minor;
    document.getElementById("card-total-title").textContent = result.title;
    document.getElementById("card-total-detail").textContent = result.detail;
    document.getElementById("card-total-rule").textContent = result.rule;
    confirmButton.textContent = result.button;
    panel.hidden = false;
    button.hidden = true;
    confirmButton.focus();
  }
  function hideTotal() {
    panel.hidden = true;
    button.hidden = false;
    offered = null;
  }

  async function pay() {
    errorBox.hidden = true;
    busy(true);
    try {
      var submitted = await elements.submit();
      if (submitted.error) { showError(submitted.error.message); busy(false); return; }
      var made = await stripe.createConfirmationToken({ elements: elements, params: { return_url: data.returnUrl } });
      if (made.error) { showError(made.error.message); busy(false); return; }
      var result = await post(made.confirmationToken.id);
      if (result.outcome === "confirm_amount") {
        busy(false);
        showTotal(result);
      } else if (result.outcome === "requires_action") {
        var next = await stripe.handleNextAction({ clientSecret: result.client_secret });
        if (next.error) { showError(next.error.message); busy(false); return; }
        window.location.assign(result.next);
      } else if (result.outcome === "succeeded" || result.outcome === "processing") {
        window.location.assign(result.next);
      } else if (result.outcome === "error" && result.next) {
        window.location.assign(result.next);  // no longer open in this browser: unlock again
      } else {
        showError(result.message || data.msgNetwork);
        busy(false);
      }
    } catch (failure) {
      showError(data.msgNetwork);
      busy(false);
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (button.disabled) { return; }
    pay();
  });

  // The client approves this card's total: the Element takes it first, so
  // a wallet's sheet shows it, then the payment goes ahead at exactly it.
  confirmButton.addEventListener("click", async function () {
    if (offered === null) { return; }
    confirmButton.disabled = true;
    try {
      await elements.update({ amount: offered });
      approved = offered;
      hideTotal();
      await pay();
    } finally {
      confirmButton.disabled = false;
    }
  });

  // Another card: back to the amount the page offered first.
  changeButton.addEventListener("click", async function () {
    await elements.update({ amount: baseAmount });
    approved = baseAmount;
    hideTotal();
  });
}());
