"""Generate the clean-traffic corpus (tests/waf/data/clean_corpus.jsonl), deterministically.

Legitimate requests of the kinds a front end sees: page views with real browser headers and
cookies, search boxes (apostrophes, SQL-looking words, non-English text, symbols), JSON APIs,
GraphQL, login/contact/comment forms, rich-text (HTML) fields, Markdown and code snippets, URL
fields (webhooks, redirects, share links), file uploads (images, PDFs, CSV), analytics beacons sent as
text/plain, long base64 and JWT tokens. Each line: {"kind", "method", "uri", "headers", "body"}.

    .venv/bin/python bench/waf_make_clean_corpus.py [--n 2400] [-o tests/waf/data/clean_corpus.jsonl]
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
    "okhttp/4.12.0",
    "python-requests/2.31.0",
    "curl/8.5.0",
    "Go-http-client/1.1",
    "axios/1.6.8",
    "Dalvik/2.1.0 (Linux; U; Android 13; SM-S911B Build/TP1A.220624.014)",
    "MyShopApp/5.2.1 (iPhone; iOS 17.4.1; Scale/3.00)",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "kube-probe/1.29",
    "Prometheus/2.51.0",
]
LANGS = ["en-US,en;q=0.9", "de-DE,de;q=0.9,en;q=0.8", "fr-FR,fr;q=0.9", "ja-JP,ja;q=0.9", "zh-CN,zh;q=0.9",
         "pt-BR,pt;q=0.9,en-US;q=0.8", "es-ES,es;q=0.9", "ar-SA,ar;q=0.9", "ru-RU,ru;q=0.9", "en-GB,en;q=0.8"]  # fmt: skip

SEARCHES = [
    "O'Reilly python books", "don't stop believing lyrics", "rock 'n' roll hall of fame", "Levi's 501 jeans",
    "McDonald's near me", "children's shoes size 12", "what's the weather tomorrow", "L'Oréal shampoo",
    "select a health insurance plan", "drop shipping business ideas", "union station chicago parking",
    "insert coin arcade bar", "update my billing address", "delete my account", "order by phone",
    "where is my order", "table for two tonight", "learn to cook from scratch", "1=1 meaning in logic",
    "black or white sofa", "and then there were none", "null hypothesis definition", "exec chair ergonomic",
    "script writing course", "javascript tutorial for beginners", "java vs kotlin", "python list comprehension",
    "how to use sleep() in C", "etc/hosts file windows", "bash vs zsh", "cat food grain free", "ls 500 lexus",
    "curl hair products", "echo dot 5th gen", "ping pong table", "sudo meaning", "kill bill soundtrack",
    "the who tour 2024", "ps5 controller", "top 10 movies 2023", "w hotel barcelona", "find my iphone",
    "5 > 3 and 2 < 4", "50% off shoes", "C++ vs C#", "price < $100 laptops", "AT&T store hours", "Q&A session",
    "R&D tax credit", "H&M jeans", "tom & jerry cartoon", "salt & pepper shakers", "1 + 1 = 2 proof",
    "Ünïcödé tëst", "東京 ラーメン おすすめ", "北京烤鸭 做法", "서울 맛집", "купить велосипед", "café crème brûlée",
    "مطاعم في الرياض", "हिंदी समाचार", "ελληνικά μαθήματα", "Zürich Hauptbahnhof", "señor de los anillos",
    "🍕 pizza near me", "iphone 15 pro max 256gb", "how to center a div", "email@example.com not working",
    "what does <br> do in html", "best sci-fi books (2020-2024)", "#hashtag ideas", "100% cotton t-shirt",
    "~/.bashrc location", "C:\\Program Files missing", "1/2 cup to grams", "3' x 5' rug", "12\" subwoofer",
    "wait... what?", "select all that apply", "union vs intersection", "from paris with love", "and or not",
    "admin panel template", "root beer float recipe", "shell gas station", "system of a down", "having fun",
    "group by age statistics", "case when definition", "if else statement", "where the crawdads sing",
]
WORDS = ("the quick brown fox jumps over lazy dog lorem ipsum dolor sit amet consectetur adipiscing elit sed do "
         "eiusmod tempor incididunt ut labore et dolore magna aliqua order select update from table union and or "
         "where join delete drop create insert having group by script alert system file path user admin root shell "
         "cat echo print eval exec import include require java python node window document location").split()  # fmt: skip
NAMES = ["Liam O'Connor", "Zoë Müller", "José García", "Anne-Marie D'Arcy", "李小龍", "Søren Kierkegaard",
         "Françoise Sagan", "Mohammed Al-Farsi", "Ólafur Arnalds", "Nguyễn Văn A", "Jean-Luc Picard",
         "Mary-Kate O'Neil", "Björk Guðmundsdóttir", "Siobhán Ní Bhriain", "Dwayne \"The Rock\" Johnson"]  # fmt: skip
STREETS = ["221B Baker St.", "1600 Amphitheatre Pkwy", "Rue de l'Église 4", "Königsallee 12", "10 Downing St",
           "742 Evergreen Terrace, Apt #3", "Calle 50 & Av. 7", "P.O. Box 123", "1 Infinite Loop; Bldg 2"]  # fmt: skip
COMMENTS = [
    "Great product! Would buy again :)", "It's OK, but the delivery took 2 weeks...",
    "Doesn't work with my Mac (Sonoma 14.4). Any ideas?", "5 stars - the best I've had; highly recommended!!!",
    "Tried it with 1/2 cup sugar instead of 1 cup & it was still sweet.", "Where can I find the manual? The link is broken.",
    "I'd select this one over the others -- definitely.", "Price dropped from $49.99 to $39.99, nice.",
    "Please update the FAQ: shipping to Canada is possible.", "Ordered on 2024-03-01; still not here?!",
    "Je l'adore, c'est parfait.", "Sehr gut, aber etwas teuer (ca. 50 €).", "很好用，推荐！", "とても良いです。また買います。",
    "Love it <3", "10/10 — would recommend to friends & family", "Can you add a 'dark mode'? My eyes hurt at night.",
    "Union members get a 10% discount, right?", "The script on page 3 has a typo: 'teh' -> 'the'.",
    "Is it safe for cats? My cat ate some.", "Echo chamber effect is real in these reviews lol",
    "Ran it on Windows 11 & Ubuntu 22.04 - both fine.", "What's the difference between v1 and v2?",
    "My order #12345 arrived damaged; I'd like a refund or exchange.", "Drop me a line at jane.doe@example.org",
]
HTML_SNIPPETS = [
    "<p>Hello <strong>world</strong>! This is <em>rich</em> text.</p>",
    "<h2>Release notes</h2><ul><li>Faster search</li><li>Dark mode</li></ul>",
    "<p>See <a href=\"https://example.com/docs?page=2&amp;lang=en\" target=\"_blank\" rel=\"noopener\">the docs</a>.</p>",
    "<p><img src=\"https://cdn.example.com/img/photo-123.jpg\" alt=\"A photo\" width=\"600\" height=\"400\"></p>",
    "<blockquote>To be, or not to be</blockquote><p>— Shakespeare</p>",
    "<table><tr><th>Plan</th><th>Price</th></tr><tr><td>Basic</td><td>$5</td></tr></table>",
    "<p style=\"text-align: center; color: #333;\">Centered text</p>",
    "<ol><li>Select a size</li><li>Add to cart</li><li>Checkout</li></ol>",
    "<p>Code: <code>npm install --save lodash</code></p>",
    "<div class=\"note\"><span>Note:</span> prices include VAT &amp; shipping.</div>",
    "<p>Line one<br>Line two<br/>Line three</p>",
    "<h1>Über uns</h1><p>Wir sind ein kleines Team aus Köln.</p>",
    "<pre><code class=\"language-python\">print(\"hello\")</code></pre>",
    "<p><a href=\"mailto:support@example.com\">Email us</a> or call <a href=\"tel:+15551234567\">+1 555 123 4567</a></p>",
    "<figure><img src=\"/uploads/2024/05/chart.png\" alt=\"Sales chart\"><figcaption>Q1 sales</figcaption></figure>",
    "<p>Use <kbd>Ctrl</kbd> + <kbd>C</kbd> to copy &amp; <kbd>Ctrl</kbd> + <kbd>V</kbd> to paste.</p>",
]
CODE_SNIPPETS = [
    "def add(a, b):\n    return a + b\n\nprint(add(1, 2))\n",
    "const total = items.reduce((sum, i) => sum + i.price, 0);\nconsole.log(`Total: ${total}`);\n",
    "for (let i = 0; i < 10; i++) {\n  if (i % 2 === 0) continue;\n  console.log(i);\n}\n",
    "import numpy as np\n\narr = np.array([1, 2, 3])\nprint(arr.mean())\n",
    "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"hello\")\n}\n",
    "fn main() {\n    let v: Vec<i32> = (1..10).collect();\n    println!(\"{:?}\", v);\n}\n",
    ".btn {\n  color: #fff;\n  background: linear-gradient(90deg, #f00, #00f);\n}\n",
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 3\n",
    "public class Hello {\n  public static void main(String[] args) {\n    System.out.println(\"Hi\");\n  }\n}\n",
    "SELECT name, price FROM products WHERE price < 100 ORDER BY price;",
    "git commit -m \"fix: handle empty input\" && git push origin main",
    "x = [i ** 2 for i in range(10) if i % 3 == 0]",
    "if (user && user.isAdmin) {\n  showPanel();\n} else {\n  redirect('/login');\n}\n",
    "# Title\n\nSome *markdown* with a [link](https://example.com) and `inline code`.\n\n- one\n- two\n",
    "<template>\n  <div>{{ message }}</div>\n</template>\n",
    "docker run -p 8080:80 nginx:latest",
    "let greeting = name ? `Hello, ${name}!` : 'Hello!';",
]
URLS = [
    "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=42s", "https://github.com/encode/httpx/issues/1234",
    "https://en.wikipedia.org/wiki/Web_application_firewall", "https://example.com/callback?code=abc123&state=xyz",
    "https://hooks.slack.com/services/T000/B000/XXXX", "https://shop.example.co.uk/p/blue-shirt?size=M",
    "/dashboard", "/account/settings#security", "https://maps.google.com/?q=52.52,13.405",
    "https://docs.python.org/3/library/urllib.parse.html#urllib.parse.quote",
    "https://cdn.example.net/assets/app.3f2a9c.js", "https://www.amazon.de/dp/B08N5WRWNW?th=1",
    "https://api.stripe.com/v1/charges", "http://localhost-docs.example.org/guide",
]
PATHS = ["/", "/products", "/products/1234", "/blog/2024/05/how-to-choose-a-laptop", "/category/shoes/women",
         "/static/js/main.4f2a9c1b.js", "/static/css/app.css", "/images/logo@2x.png", "/about-us", "/contact",
         "/cart", "/checkout/step-2", "/account/orders", "/help/faq", "/news/world/europe", "/de/produkte/schuhe",
         "/fr/a-propos", "/user/jane.doe/profile", "/api/v2/items/8f14e45f-ceea-467a-9b3c-2d5e8c1b9f00",
         "/favicon.ico", "/robots.txt", "/sitemap.xml", "/manifest.json", "/feed.rss", "/health"]  # fmt: skip


def jwt(rng: random.Random) -> str:
    def b64(d: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    head = b64({"alg": "HS256", "typ": "JWT"})
    body = b64({"sub": str(rng.randint(1, 10**6)), "name": rng.choice(NAMES), "iat": 1714000000 + rng.randint(0, 10**6)})
    sig = base64.urlsafe_b64encode(rng.randbytes(32)).rstrip(b"=").decode()
    return f"{head}.{body}.{sig}"


def browser_headers(rng: random.Random, with_cookie: bool = True) -> dict[str, str]:
    h = {
        "Host": "shop.example.com",
        "User-Agent": rng.choice(UAS),
        "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
        "Accept-Language": rng.choice(LANGS),
        "Accept-Encoding": "gzip, deflate, br",
    }
    if rng.random() < 0.6:
        h["Referer"] = "https://shop.example.com" + rng.choice(PATHS)
    if with_cookie and rng.random() < 0.8:
        parts = [f"_ga=GA1.2.{rng.randint(10**8, 10**9)}.{rng.randint(1600000000, 1714000000)}",
                 f"sessionid={rng.randbytes(16).hex()}"]  # fmt: skip
        if rng.random() < 0.5:
            parts.append(f"csrftoken={base64.b64encode(rng.randbytes(24)).decode()}")
        if rng.random() < 0.3:
            parts.append("cookie_consent=" + urllib.parse.quote(json.dumps({"analytics": True, "ads": False})))
        if rng.random() < 0.3:
            parts.append(f"lang={rng.choice(['en', 'de', 'fr', 'ja'])}; theme=dark")
        if rng.random() < 0.2:
            parts.append("recently_viewed=" + urllib.parse.quote("1234,5678,91011"))
        h["Cookie"] = "; ".join(parts)
    return h


def sentence(rng: random.Random, n: int = 8) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + rng.choice([".", "!", "?", "..."])


def gen(rng: random.Random, kind: str) -> dict:
    if kind == "page":
        path = rng.choice(PATHS)
        q = ""
        if rng.random() < 0.4:
            params = {"utm_source": rng.choice(["google", "newsletter", "twitter"]), "utm_medium": "cpc",
                      "utm_campaign": rng.choice(["spring_sale", "black-friday-2024", "brand"])}  # fmt: skip
            if rng.random() < 0.3:
                params["gclid"] = base64.urlsafe_b64encode(rng.randbytes(30)).decode().rstrip("=")
            q = "?" + urllib.parse.urlencode(params)
        elif rng.random() < 0.3:
            q = f"?page={rng.randint(1, 40)}&sort={rng.choice(['price', '-price', 'newest', 'rating'])}"
        return {"method": "GET", "uri": path + q, "headers": browser_headers(rng), "body": None}
    if kind == "search":
        term = rng.choice(SEARCHES)
        extra = rng.choice(["", f"&page={rng.randint(1, 9)}", "&lang=en", f"&category={rng.choice(['books', 'all'])}"])
        return {"method": "GET", "uri": "/search?q=" + urllib.parse.quote_plus(term) + extra,
                "headers": browser_headers(rng), "body": None}  # fmt: skip
    if kind == "json_api":
        doc = rng.choice([
            {"customer": {"name": rng.choice(NAMES), "email": "jane.o'neil@example.com",
                          "address": {"street": rng.choice(STREETS), "city": rng.choice(["Köln", "Paris", "東京", "New York"]), "zip": "50667"}},
             "items": [{"sku": f"SKU-{rng.randint(1000, 9999)}", "qty": rng.randint(1, 5), "price": round(rng.uniform(1, 500), 2)} for _ in range(rng.randint(1, 4))],
             "note": rng.choice(COMMENTS), "gift": rng.random() < 0.2, "coupon": None},
            {"query": rng.choice(SEARCHES), "filters": {"price": {"min": 0, "max": 100}, "brand": ["Levi's", "H&M"]}, "sort": "price asc", "limit": 20},
            {"title": sentence(rng, 5), "body": rng.choice(COMMENTS), "tags": ["news", "update"], "draft": False},
            {"event": "page_view", "url": rng.choice(URLS), "referrer": rng.choice(URLS), "ts": 1714000000123, "screen": "1920x1080"},
            {"username": "jdoe", "display_name": rng.choice(NAMES), "bio": rng.choice(COMMENTS), "website": rng.choice(URLS), "timezone": "Europe/Berlin"},
            {"op": "replace", "path": "/profile/nickname", "value": rng.choice(["Mr. O'Brien", "the_admin_of_cats", "select * fan"])},
            {"messages": [{"role": "user", "content": rng.choice(COMMENTS + SEARCHES)}], "model": "small", "temperature": 0.7},
        ])  # fmt: skip
        method = rng.choice(["POST", "POST", "PUT", "PATCH"])
        h = {"Host": "api.example.com", "User-Agent": rng.choice(UAS), "Content-Type": "application/json",
             "Accept": "application/json", "Authorization": f"Bearer {jwt(rng)}"}  # fmt: skip
        return {"method": method, "uri": rng.choice(["/api/v1/orders", "/api/v1/search", "/api/posts", "/collect",
                                                     "/api/v1/users/me", "/api/v1/chat"]),
                "headers": h, "body": json.dumps(doc, ensure_ascii=rng.random() < 0.5)}  # fmt: skip
    if kind == "graphql":
        q = rng.choice([
            'query { product(id: "123") { name price reviews(first: 5) { author text } } }',
            "query Search($q: String!) { search(query: $q) { edges { node { id title } } } }",
            'mutation { addToCart(productId: "8f14", qty: 2) { cart { total } } }',
            "query { viewer { orders(last: 10, orderBy: {field: CREATED_AT, direction: DESC}) { id status } } }",
        ])  # fmt: skip
        body = json.dumps({"query": q, "variables": {"q": rng.choice(SEARCHES)}})
        h = {"Host": "api.example.com", "User-Agent": rng.choice(UAS), "Content-Type": "application/json"}
        return {"method": "POST", "uri": "/graphql", "headers": h, "body": body}
    if kind == "form":
        fields = rng.choice([
            {"username": rng.choice(["jdoe", "maria.s", "o'brien", "admin2024"]), "password": rng.choice(["P@ss'w0rd!", "hunter2", "c0rrect-h0rse;battery", "Pa$$w0rd#1", "ÄÖÜ-secret"]), "remember": "on"},
            {"name": rng.choice(NAMES), "email": "someone@example.org", "subject": "Question about my order", "message": "\n".join(rng.choice(COMMENTS) for _ in range(3))},
            {"comment": rng.choice(COMMENTS), "rating": str(rng.randint(1, 5)), "product_id": str(rng.randint(1, 9999))},
            {"address1": rng.choice(STREETS), "address2": "", "city": "São Paulo", "state": "SP", "zip": "01310-100", "phone": "+55 (11) 91234-5678"},
            {"q": rng.choice(SEARCHES), "csrfmiddlewaretoken": base64.b64encode(rng.randbytes(32)).decode()},
            {"redirect": rng.choice(URLS), "next": "/account/orders?page=2"},
        ])  # fmt: skip
        h = browser_headers(rng)
        h["Content-Type"] = "application/x-www-form-urlencoded"
        return {"method": "POST", "uri": rng.choice(["/login", "/contact", "/reviews", "/checkout/address", "/search", "/logout"]),
                "headers": h, "body": urllib.parse.urlencode(fields)}  # fmt: skip
    if kind == "rich_text":
        html = "".join(rng.sample(HTML_SNIPPETS, rng.randint(1, 4)))
        h = browser_headers(rng)
        if rng.random() < 0.5:
            h["Content-Type"] = "application/json"
            body = json.dumps({"title": sentence(rng, 4), "content_html": html, "status": "draft"})
        else:
            h["Content-Type"] = "application/x-www-form-urlencoded"
            body = urllib.parse.urlencode({"title": sentence(rng, 4), "content": html})
        return {"method": "POST", "uri": "/cms/posts", "headers": h, "body": body}
    if kind == "code":
        code = rng.choice(CODE_SNIPPETS)
        h = browser_headers(rng)
        h["Content-Type"] = "application/json"
        body = json.dumps({"title": "snippet", "language": "auto", "content": code})
        return {"method": "POST", "uri": "/api/snippets", "headers": h, "body": body}
    if kind == "url_field":
        h = browser_headers(rng)
        h["Content-Type"] = "application/json"
        body = json.dumps({"webhook_url": rng.choice(URLS), "events": ["order.created"], "active": True})
        if rng.random() < 0.5:
            return {"method": "GET", "uri": "/share?url=" + urllib.parse.quote(rng.choice(URLS), safe="") + "&title="
                    + urllib.parse.quote(sentence(rng, 4)), "headers": browser_headers(rng), "body": None}  # fmt: skip
        return {"method": "POST", "uri": "/api/webhooks", "headers": h, "body": body}
    if kind == "upload":
        boundary = "----WebKitFormBoundary" + base64.b64encode(rng.randbytes(12)).decode().replace("+", "x").replace("/", "y")
        fname, ctype, data = rng.choice([
            ("IMG_2024_05_01.jpg", "image/jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF" + rng.randbytes(600)),
            ("report Q3 (final).pdf", "application/pdf", b"%PDF-1.7\n" + rng.randbytes(500)),
            ("résumé.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", b"PK\x03\x04" + rng.randbytes(400)),
            ("data.csv", "text/csv", b"id,name,price\n1,O'Reilly book,29.99\n2,\"Levi's 501\",79.00\n3,caf\xc3\xa9,2.50\n"),
            ("avatar.png", "image/png", b"\x89PNG\r\n\x1a\n" + rng.randbytes(500)),
            ("notes.txt", "text/plain", "Meeting notes: select vendor, update budget, drop old plan.\n".encode()),
        ])  # fmt: skip
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="description"\r\n\r\n{rng.choice(COMMENTS)}\r\n'.encode(),
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{fname}"\r\nContent-Type: {ctype}\r\n\r\n'.encode()
            + data + b"\r\n",
            f"--{boundary}--\r\n".encode(),
        ]  # fmt: skip
        h = browser_headers(rng)
        h["Content-Type"] = f"multipart/form-data; boundary={boundary}"
        return {"method": "POST", "uri": "/upload", "headers": h, "body": b"".join(parts).decode("latin-1"),
                "body_encoding": "latin-1"}  # fmt: skip
    if kind == "beacon":
        h = {"Host": "shop.example.com", "User-Agent": rng.choice(UAS[:6]), "Content-Type": "text/plain;charset=UTF-8",
             "Origin": "https://shop.example.com"}  # fmt: skip
        doc = {"v": 2, "tid": "G-ABC123", "cid": f"{rng.randint(10**8, 10**9)}.{rng.randint(10**9, 2 * 10**9)}",
               "en": rng.choice(["page_view", "scroll", "click", "purchase"]), "dl": "https://shop.example.com" + rng.choice(PATHS),
               "dt": sentence(rng, 4), "ep": {"value": rng.randint(1, 99), "currency": "EUR"},
               "ua": base64.b64encode(rng.choice(UAS).encode()).decode()}  # fmt: skip
        return {"method": "POST", "uri": "/g/collect", "headers": h, "body": json.dumps(doc)}
    if kind == "api_get":
        params = {"ids": ",".join(str(rng.randint(1, 9999)) for _ in range(rng.randint(1, 6))),
                  "fields": "id,name,price", "filter[status]": rng.choice(["active", "pending"]),
                  "since": "2024-05-01T00:00:00Z", "cursor": base64.b64encode(json.dumps({"id": rng.randint(1, 10**6)}).encode()).decode()}  # fmt: skip
        h = {"Host": "api.example.com", "User-Agent": rng.choice(UAS), "Accept": "application/json",
             "Authorization": f"Bearer {jwt(rng)}", "X-Request-ID": rng.randbytes(16).hex()}  # fmt: skip
        return {"method": "GET", "uri": "/api/v1/products?" + urllib.parse.urlencode(params), "headers": h, "body": None}
    if kind == "xml":
        name = rng.choice(NAMES).replace("&", "&amp;").replace('"', "&quot;")
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<order id="{rng.randint(1, 9999)}"><customer>{name}</customer>'
                f"<note>{rng.choice(COMMENTS).replace('&', '&amp;').replace('<', '&lt;')}</note><total currency=\"EUR\">{rng.randint(1, 999)}.00</total></order>")  # fmt: skip
        h = {"Host": "api.example.com", "User-Agent": rng.choice(UAS), "Content-Type": "application/xml"}
        return {"method": "POST", "uri": "/api/orders.xml", "headers": h, "body": body}
    raise ValueError(kind)


KINDS = {"page": 18, "search": 16, "json_api": 16, "graphql": 4, "form": 12, "rich_text": 8, "code": 5,
         "url_field": 6, "upload": 6, "beacon": 4, "api_get": 6, "xml": 3}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2400)
    ap.add_argument("--seed", type=int, default=20261123)
    ap.add_argument("-o", "--output", type=Path, default=ROOT / "tests" / "waf" / "data" / "clean_corpus.jsonl")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    kinds = [k for k, w in KINDS.items() for _ in range(w)]
    with args.output.open("w", encoding="utf-8") as fh:
        for i in range(args.n):
            kind = rng.choice(kinds)
            d = gen(rng, kind)
            d = {"id": f"clean-{i:05d}", "kind": kind, **d}
            fh.write(json.dumps(d, ensure_ascii=False) + "\n")
    print(f"wrote {args.n} requests to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
