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

from gateway.money import CURRENCY_DECIMALS, CURRENCY_SYMBOLS, format_decimal, format_display

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
        query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("lang", [None])[-1]
        cookie = cookie_parser(headers.get("cookie", "")).get(COOKIE)
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
