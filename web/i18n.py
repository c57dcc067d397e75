"""English and (Canadian) French for the client's pages.

The language comes from ``?lang=`` (which the switch on every page sets,
and which is then kept in a cookie), else the cookie, else the browser's
Accept-Language, else English. Strings are plain text: templates escape
them like any other value.
"""

from __future__ import annotations

import datetime
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.core.money import CURRENCY_DECIMALS, CURRENCY_SYMBOLS, format_decimal, format_display

LANGUAGES = ("en", "fr")
DEFAULT = "en"
COOKIE = "ct_lang"
LANGUAGE_NAMES = {"en": "English", "fr": "Français"}

MONTHS = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"),
    "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
           "octobre", "novembre", "décembre"),
}

# Plurals: "key_one" for 1, "key_other" for the rest (French also uses
# "_one" for 0, which never comes up here).
CATALOGUE: dict[str, dict[str, str]] = {
    "en": {
        "product_footer": "Sent securely by clienttrack",
        "product_footer_firm": "Sent securely by clienttrack on behalf of {firm}",
        "unlock_title": "Secure message from {firm}",
        "unlock_heading": "You have a secure payment request",
        "unlock_intro": "{firm} sent you a message and documents. Enter the password they gave you to open them.",
        "from": "From",
        "regarding": "Regarding",
        "invoice": "Invoice",
        "amount_due": "Amount due",
        "link_expires": "Link expires",
        "password": "Password",
        "hint": "Hint: {hint}",
        "open": "Open my message",
        "unlock_help": "{firm} gave you the password separately, not in the email. "
                       "If you do not know it, reply to their email or call them.",
        "wrong_one": "That password is not right. You have 1 more try before this message is locked for a while.",
        "wrong_other": "That password is not right. You have {count} more tries before this message is "
                       "locked for a while.",
        "locked": "Too many wrong passwords. For your security, this message is locked. "
                  "Try again in {wait}.",
        "locked_help": "If you are not sure of the password, contact {firm}.",
        "empty_password": "Type your password.",
        "form_expired": "This page was open for too long. Please type your password again.",
        "too_fast": "Too many tries from your connection. Please wait {wait} and try again.",
        "busy_title": "Please try again in a moment",
        "busy": "Many messages are being opened right now. Please try again in a few seconds.",
        "refused_title": "This request was refused",
        "refused": "It did not come from this site's own page. Go back to the message and try again there.",
        "message_title": "Message from {firm}",
        "message_heading": "Your message from {firm}",
        "documents": "Documents",
        "no_documents": "No documents are attached.",
        "download_note": "Documents download to your device.",
        "pay": "Pay {amount}",
        "paid": "Paid on {date}. Thank you.",
        "refunded": "This payment was refunded.",
        "lock_again": "Lock this message",
        "lock_again_help": "On a shared computer, lock the message when you are done. "
                           "It also locks itself after 30 minutes without use.",
        "locked_again": "The message is locked. Open it again with your password.",
        "not_found_title": "Link not found",
        "not_found_heading": "We could not find this message",
        "not_found_body": "The link may be incomplete: copy the whole address from the email, "
                          "or click the button in it again.",
        "not_found_help": "If it still does not work, contact the firm that sent you the email.",
        "gone_title": "This request is no longer available",
        "gone_cancelled": "{firm} cancelled this request.",
        "gone_expired": "This link expired on {date}.",
        "gone_help": "Please contact {firm} for a new one.",
        "gone_write": "Write to {email}",
        "pay_title": "Pay {firm}",
        "pay_unavailable": "Online payment is not set up yet. Please contact {firm} to pay.",
        "pay_contact": "To pay, write to {email}.",
        "pay_test_title": "TEST checkout",
        "pay_test_badge": "TEST",
        "pay_test_banner": "This is a test checkout: no card is charged and no money moves. "
                           "Use one of the test cards below.",
        "pay_test_cards": "Test cards",
        "pay_test_credit": "credit card, approved",
        "pay_test_debit": "debit card, approved",
        "pay_test_declined": "declined",
        "pay_what_you_pay": "What you pay",
        "pay_paying_with": "Paying with",
        "pay_you_pay": "You pay",
        "pay_row_any": "Any payment method",
        "pay_row_credit": "Credit card",
        "pay_row_debit": "Debit or prepaid card",
        "pay_row_debit_klarna": "Debit or prepaid card, or Klarna",
        "pay_row_debit_only": "Debit card",
        "pay_row_prepaid": "Prepaid card",
        "pay_row_other": "Other payment methods",
        "pay_includes_fee": "includes a {fee} card fee",
        "pay_no_fee": "no card fee",
        "pay_rule_debit": "No card fee on debit or prepaid cards in Canada.",
        "pay_rule_debit_klarna": "No card fee on debit or prepaid cards, or on Klarna, in Canada.",
        "pay_quebec_note": "Billed in Quebec? No card fee applies to any card: choose Quebec below.",
        "pay_province": "Billing province",
        "pay_province_other": "Outside Quebec",
        "pay_province_qc": "Quebec",
        "pay_province_help": "Card fees are not charged to clients billed in Quebec.",
        "pay_card_number": "Card number",
        "pay_expiry": "Expiry",
        "pay_expiry_placeholder": "MM/YY",
        "pay_cvc": "Security code",
        "pay_test_any_expiry": "In TEST mode any future expiry date and any 3 digits work.",
        "pay_button_test": "Pay (TEST)",
        "pay_button": "Pay",
        "pay_paying": "Paying…",
        "pay_card_missing": "Type your card number.",
        "pay_declined": "Your card was declined. Try another card.",
        "pay_not_recognised": "That is not one of the test cards. Use 4242 4242 4242 4242 to try a payment.",
        "pay_failed": "The payment did not go through. Try another card or payment method.",
        "pay_checking": "A payment for this request is being checked by {firm}. Please contact them "
                        "before you pay again.",
        "pay_not_payable": "This request cannot be paid online. Please contact {firm}.",
        "pay_try_later": "The payment service could not be reached. Please try again in a minute.",
        "pay_secure_note": "Your card details go straight to Stripe, our payment processor: "
                           "{firm} never sees your card number.",
        "pay_needs_js": "The secure card form needs JavaScript. Turn it on to pay here, or contact {firm}.",
        "pay_load_failed": "The secure payment form could not load. Check your connection and reload the page.",
        "pay_network": "We could not reach the server. Check your connection and try again.",
        "paid_title": "Thank you",
        "paid_headline": "You paid {amount} to {firm}",
        "paid_reference": "Reference: {reference}",
        "paid_amount": "Amount",
        "paid_card_fee": "Card fee",
        "paid_total": "Total paid",
        "paid_on": "Paid on",
        "paid_with": "Paid with",
        "paid_payment_id": "Payment ID",
        "paid_with_credit": "Credit card",
        "paid_with_debit": "Debit card",
        "paid_with_prepaid": "Prepaid card",
        "paid_with_other": "Card or wallet",
        "paid_receipt_sent": "A receipt is on its way to {email}. Keep it for your records.",
        "paid_test_note": "This was a TEST payment: no card was charged and no money moved.",
        "paid_refunded_part": "{amount} of this payment was refunded.",
        "paid_received_title": "Payment received",
        "paid_received": "{firm} has your payment. A receipt is on its way to you by email.",
        "open_message": "Open your message",
        "see_payment": "See your payment",
        "processing_title": "Your payment is being processed",
        "processing_body": "{firm} will have it as soon as your bank confirms it. This page checks again "
                           "by itself, and a receipt will come by email.",
        "check_again": "Check again",
        "not_paid_title": "Your payment did not go through",
        "not_paid_body": "No money was taken. You can try again with another card or payment method.",
        "try_again": "Try again",
        "back": "Back to the message",
        "minutes_one": "1 minute",
        "minutes_other": "{count} minutes",
        "hours_one": "1 hour",
        "hours_other": "{count} hours",
        "days_one": "1 day",
        "days_other": "{count} days",
        "seconds_one": "1 second",
        "seconds_other": "{count} seconds",
        "bytes": "{count} bytes",
        "kb": "{count} KB",
        "mb": "{count} MB",
    },
    "fr": {
        "product_footer": "Envoyé de façon sécurisée par clienttrack",
        "product_footer_firm": "Envoyé de façon sécurisée par clienttrack au nom de {firm}",
        "unlock_title": "Message sécurisé de {firm}",
        "unlock_heading": "Vous avez une demande de paiement sécurisée",
        "unlock_intro": "{firm} vous a envoyé un message et des documents. Entrez le mot de passe "
                        "qu’on vous a donné pour les ouvrir.",
        "from": "De",
        "regarding": "Objet",
        "invoice": "Facture",
        "amount_due": "Montant dû",
        "link_expires": "Le lien expire le",
        "password": "Mot de passe",
        "hint": "Indice\u00a0: {hint}",
        "open": "Ouvrir mon message",
        "unlock_help": "{firm} vous a donné le mot de passe séparément, pas dans le courriel. "
                       "Si vous ne le connaissez pas, répondez à son courriel ou téléphonez-lui.",
        "wrong_one": "Ce mot de passe n’est pas le bon. Il vous reste 1 essai avant que ce message soit "
                     "verrouillé pendant un moment.",
        "wrong_other": "Ce mot de passe n’est pas le bon. Il vous reste {count} essais avant que ce message "
                       "soit verrouillé pendant un moment.",
        "locked": "Trop de mots de passe incorrects. Pour votre sécurité, ce message est verrouillé. "
                  "Réessayez dans {wait}.",
        "locked_help": "Si vous n’êtes pas certain du mot de passe, communiquez avec {firm}.",
        "empty_password": "Entrez votre mot de passe.",
        "form_expired": "Cette page est restée ouverte trop longtemps. Veuillez entrer votre mot de passe "
                        "de nouveau.",
        "too_fast": "Trop d’essais à partir de votre connexion. Veuillez patienter {wait}, puis réessayer.",
        "busy_title": "Veuillez réessayer dans un instant",
        "busy": "Beaucoup de messages sont ouverts en ce moment. Veuillez réessayer dans quelques secondes.",
        "refused_title": "Cette demande a été refusée",
        "refused": "Elle ne provenait pas de la page de ce site. Retournez au message et réessayez à partir de "
                   "celui-ci.",
        "message_title": "Message de {firm}",
        "message_heading": "Votre message de {firm}",
        "documents": "Documents",
        "no_documents": "Aucun document n’est joint.",
        "download_note": "Les documents sont téléchargés sur votre appareil.",
        "pay": "Payer {amount}",
        "paid": "Payé le {date}. Merci.",
        "refunded": "Ce paiement a été remboursé.",
        "lock_again": "Verrouiller ce message",
        "lock_again_help": "Sur un ordinateur partagé, verrouillez le message quand vous avez terminé. "
                           "Il se verrouille aussi de lui-même après 30 minutes d’inactivité.",
        "locked_again": "Le message est verrouillé. Ouvrez-le de nouveau avec votre mot de passe.",
        "not_found_title": "Lien introuvable",
        "not_found_heading": "Nous ne trouvons pas ce message",
        "not_found_body": "Le lien est peut-être incomplet\u00a0: copiez l’adresse au complet à partir du "
                          "courriel, ou cliquez de nouveau sur le bouton qu’il contient.",
        "not_found_help": "Si cela ne fonctionne toujours pas, communiquez avec le cabinet qui vous a "
                          "envoyé le courriel.",
        "gone_title": "Cette demande n’est plus disponible",
        "gone_cancelled": "{firm} a annulé cette demande.",
        "gone_expired": "Ce lien a expiré le {date}.",
        "gone_help": "Veuillez communiquer avec {firm} pour en obtenir un nouveau.",
        "gone_write": "Écrire à {email}",
        "pay_title": "Payer {firm}",
        "pay_unavailable": "Le paiement en ligne n’est pas encore offert. Veuillez communiquer avec {firm} "
                           "pour payer.",
        "pay_contact": "Pour payer, écrivez à {email}.",
        "pay_test_title": "Paiement TEST",
        "pay_test_badge": "TEST",
        "pay_test_banner": "Ceci est une page de paiement de test : aucune carte n’est débitée et "
                           "aucun argent ne change de mains. Utilisez une des cartes de test ci-dessous.",
        "pay_test_cards": "Cartes de test",
        "pay_test_credit": "carte de crédit, acceptée",
        "pay_test_debit": "carte de débit, acceptée",
        "pay_test_declined": "refusée",
        "pay_what_you_pay": "Ce que vous payez",
        "pay_paying_with": "Mode de paiement",
        "pay_you_pay": "Vous payez",
        "pay_row_any": "Tout mode de paiement",
        "pay_row_credit": "Carte de crédit",
        "pay_row_debit": "Carte de débit ou prépayée",
        "pay_row_debit_klarna": "Carte de débit ou prépayée, ou Klarna",
        "pay_row_debit_only": "Carte de débit",
        "pay_row_prepaid": "Carte prépayée",
        "pay_row_other": "Autres modes de paiement",
        "pay_includes_fee": "comprend des frais de carte de {fee}",
        "pay_no_fee": "aucuns frais de carte",
        "pay_rule_debit": "Aucuns frais sur les cartes de débit ou prépayées au Canada.",
        "pay_rule_debit_klarna": "Aucuns frais sur les cartes de débit ou prépayées, ni sur Klarna, au Canada.",
        "pay_quebec_note": "Adresse de facturation au Québec ? Aucuns frais ne s’appliquent, quelle que "
                           "soit la carte : choisissez Québec ci-dessous.",
        "pay_province": "Province de facturation",
        "pay_province_other": "Hors Québec",
        "pay_province_qc": "Québec",
        "pay_province_help": "Aucuns frais de carte ne sont facturés aux clients dont l’adresse de "
                             "facturation est au Québec.",
        "pay_card_number": "Numéro de carte",
        "pay_expiry": "Expiration",
        "pay_expiry_placeholder": "MM/AA",
        "pay_cvc": "Code de sécurité",
        "pay_test_any_expiry": "En mode TEST, toute date d’expiration future et 3 chiffres quelconques "
                               "conviennent.",
        "pay_button_test": "Payer (TEST)",
        "pay_button": "Payer",
        "pay_paying": "Paiement en cours…",
        "pay_card_missing": "Entrez votre numéro de carte.",
        "pay_declined": "Votre carte a été refusée. Essayez une autre carte.",
        "pay_not_recognised": "Ce n’est pas une des cartes de test. Utilisez 4242 4242 4242 4242 pour "
                              "essayer un paiement.",
        "pay_failed": "Le paiement n’a pas abouti. Essayez une autre carte ou un autre mode de paiement.",
        "pay_checking": "Un paiement pour cette demande est en cours de vérification par {firm}. "
                        "Veuillez communiquer avec eux avant de payer de nouveau.",
        "pay_not_payable": "Cette demande ne peut pas être payée en ligne. Veuillez communiquer avec {firm}.",
        "pay_try_later": "Le service de paiement est injoignable. Veuillez réessayer dans une minute.",
        "pay_secure_note": "Les données de votre carte vont directement à Stripe, notre service de "
                           "paiement : {firm} ne voit jamais votre numéro de carte.",
        "pay_needs_js": "Le formulaire de carte sécurisé a besoin de JavaScript. Activez-le pour payer ici, "
                        "ou communiquez avec {firm}.",
        "pay_load_failed": "Le formulaire de paiement sécurisé n’a pas pu se charger. Vérifiez votre "
                           "connexion et rechargez la page.",
        "pay_network": "Le serveur est injoignable. Vérifiez votre connexion et réessayez.",
        "paid_title": "Merci",
        "paid_headline": "Vous avez payé {amount} à {firm}",
        "paid_reference": "Référence : {reference}",
        "paid_amount": "Montant",
        "paid_card_fee": "Frais de carte",
        "paid_total": "Total payé",
        "paid_on": "Payé le",
        "paid_with": "Payé par",
        "paid_payment_id": "N° de paiement",
        "paid_with_credit": "Carte de crédit",
        "paid_with_debit": "Carte de débit",
        "paid_with_prepaid": "Carte prépayée",
        "paid_with_other": "Carte ou portefeuille",
        "paid_receipt_sent": "Un reçu est en route vers {email}. Conservez-le pour vos dossiers.",
        "paid_test_note": "Ceci était un paiement TEST : aucune carte n’a été débitée et aucun argent "
                          "n’a changé de mains.",
        "paid_refunded_part": "{amount} de ce paiement a été remboursé.",
        "paid_received_title": "Paiement reçu",
        "paid_received": "{firm} a reçu votre paiement. Un reçu vous sera envoyé par courriel.",
        "open_message": "Ouvrir votre message",
        "see_payment": "Voir votre paiement",
        "processing_title": "Votre paiement est en cours de traitement",
        "processing_body": "{firm} le recevra dès que votre banque l’aura confirmé. Cette page vérifie de "
                           "nouveau d’elle-même, et un reçu vous sera envoyé par courriel.",
        "check_again": "Vérifier de nouveau",
        "not_paid_title": "Votre paiement n’a pas abouti",
        "not_paid_body": "Aucun montant n’a été prélevé. Vous pouvez réessayer avec une autre carte ou un "
                         "autre mode de paiement.",
        "try_again": "Réessayer",
        "back": "Retour au message",
        "minutes_one": "1 minute",
        "minutes_other": "{count} minutes",
        "hours_one": "1 heure",
        "hours_other": "{count} heures",
        "days_one": "1 jour",
        "days_other": "{count} jours",
        "seconds_one": "1 seconde",
        "seconds_other": "{count} secondes",
        "bytes": "{count} octets",
        "kb": "{count} Ko",
        "mb": "{count} Mo",
    },
}


def from_accept_language(header: str) -> str | None:
    """The first of our languages the browser asks for, by its q-values."""
    choices = []
    for position, item in enumerate(header.split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                continue
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            choices.append((-quality, position, primary))
    return min(choices)[2] if choices else None


def choose(query: str | None, cookie: str | None, accept_language: str) -> str:
    for candidate in (query, cookie):
        if candidate in LANGUAGES:
            return candidate
    return from_accept_language(accept_language) or DEFAULT


class Translator:
    def __init__(self, lang: str) -> None:
        self.lang = lang
        self._strings = CATALOGUE[lang]

    def __call__(self, key: str, **values: object) -> str:
        return self._strings[key].format(**values)

    def plural(self, key: str, count: int, **values: object) -> str:
        return self(f"{key}_{'one' if count == 1 else 'other'}", count=count, **values)

    @property
    def other(self) -> str:
        """The language the switch offers."""
        return next(code for code in LANGUAGES if code != self.lang)

    def amount(self, minor: int, currency: str) -> str:
        """"$1,250.00 CAD" in English, "1 250,00 $ CAD" in French."""
        if self.lang == "en":
            return format_display(minor, currency)
        whole, _, fraction = format_decimal(minor, currency).partition(".")
        grouped = f"{int(whole):,}".replace(",", "\u202f")
        number = f"{grouped},{fraction}" if CURRENCY_DECIMALS.get(currency) else grouped
        symbol = CURRENCY_SYMBOLS.get(currency)
        return f"{number}\u00a0{symbol} {currency}" if symbol else f"{number}\u00a0{currency}"

    def amount_short(self, minor: int, currency: str) -> str:
        """The amount without its currency code ("$102.40", "102,40 $") when
        the context already says the currency (a firm's own); a currency
        without a sign keeps its code."""
        full = self.amount(minor, currency)
        if not CURRENCY_SYMBOLS.get(currency):
            return full
        return full.removesuffix(f" {currency}")

    def date(self, day: datetime.date) -> str:
        month = MONTHS[self.lang][day.month - 1]
        return f"{month} {day.day}, {day.year}" if self.lang == "en" else f"{day.day} {month} {day.year}"

    def wait(self, seconds: float) -> str:
        """A wait rounded up to a unit a person reads at a glance."""
        seconds = max(1, int(seconds + 0.999))
        if seconds < 60:
            return self.plural("seconds", seconds)
        minutes = -(-seconds // 60)
        if minutes < 120:
            return self.plural("minutes", minutes)
        hours = -(-minutes // 60)
        if hours < 48:
            return self.plural("hours", hours)
        return self.plural("days", -(-hours // 24))

    def size(self, count: int) -> str:
        if count < 1000:
            return self("bytes", count=count)
        if count < 1000 * 1000:
            return self("kb", count=max(1, round(count / 1000)))
        text = f"{count / 1_000_000:.1f}"
        return self("mb", count=text.replace(".", ",") if self.lang == "fr" else text)


class LanguageMiddleware:
    """Puts the chosen language in ``request.state.lang``, and remembers a
    choice made with ``?lang=`` in a cookie."""

    def __init__(self, app: ASGIApp, secure: bool) -> None:
        self.app = app
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        # Most requests carry neither a choice nor the cookie: parse only when they might.
        query_string = scope.get("query_string", b"")
        query = parse_qs(query_string.decode("latin-1")).get("lang", [None])[-1] if b"lang" in query_string else None
        cookies = headers.get("cookie", "")
        cookie = cookie_parser(cookies).get(COOKIE) if COOKIE in cookies else None
        lang = choose(query, cookie, headers.get("accept-language", ""))
        scope.setdefault("state", {})["lang"] = lang
        if query not in LANGUAGES or query == cookie:
            await self.app(scope, receive, send)
            return

        async def remember(message: Message) -> None:
            if message["type"] == "http.response.start":
                morsel = SimpleCookie()
                morsel[COOKIE] = lang
                # Lax, unlike the secret cookies: a language is no secret, and
                # it should hold when the client arrives from the email's link.
                morsel[COOKIE].update({"path": "/", "max-age": str(365 * 24 * 3600), "samesite": "Lax"})
                if self.secure:
                    morsel[COOKIE]["secure"] = True
                value = morsel.output(header="").strip()
                message.setdefault("headers", []).append((b"set-cookie", value.encode("latin-1")))
            await send(message)

        await self.app(scope, receive, remember)
