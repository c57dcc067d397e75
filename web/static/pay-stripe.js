// The Stripe pay page: the Payment Element (cards, Apple Pay, Google Pay,
// Klarna) in Stripe's own frames, then the payment confirmed on our server.
//
// Pay: elements.submit() checks the fields, createConfirmationToken() turns
// them into a token, and we post the token to /r/<token>/pay with the form's
// CSRF token. The server reads the card's type, sets the amount the fee rules
// allow and confirms the request's one PaymentIntent. It answers JSON:
// "succeeded"/"processing" -> go to the thank-you page; "requires_action"
// (3-D Secure, Klarna) -> Stripe.js takes that step, then the thank-you page;
// "declined"/"error" -> show the message and let the client try again.
// Everything it shows comes from data- attributes, in the page's language.
(function () {
  "use strict";
  var form = document.getElementById("payment-form");
  if (!form) { return; }
  var button = document.getElementById("pay-button");
  var errorBox = document.getElementById("pay-error");
  var data = form.dataset;
  var label = button.textContent;

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
    amount: parseInt(data.amount, 10),
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
    if (form.elements.province) { body.set("province", form.elements.province.value); }
    var answer = await fetch(form.action, {
      method: "POST", body: body, credentials: "same-origin", headers: { "Accept": "application/json" }
    });
    return answer.json();
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    if (button.disabled) { return; }
    errorBox.hidden = true;
    busy(true);
    try {
      var submitted = await elements.submit();
      if (submitted.error) { showError(submitted.error.message); busy(false); return; }
      var made = await stripe.createConfirmationToken({ elements: elements, params: { return_url: data.returnUrl } });
      if (made.error) { showError(made.error.message); busy(false); return; }
      var result = await post(made.confirmationToken.id);
      if (result.outcome === "requires_action") {
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
  });
}());
