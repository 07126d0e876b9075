"""Fill and send the web door's forms in a real browser: headless Chromium
driven by Selenium (Debian's chromium, chromium-driver and
python3-selenium, installed by contrib/test.sh).

Usage: browser_form.py BASE_URL CUSTOMER_PAGE_URL

1. Opens BASE_URL/contact, fills every field, sends it (the page's own
   script posts it), and prints the status line the page shows.
2. Opens CUSTOMER_PAGE_URL, writes a reply in its form and sends it (a
   plain form post, no script), and prints the note the page shows after.
"""

import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

base, page = sys.argv[1], sys.argv[2]
options = webdriver.ChromeOptions()
for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
    options.add_argument(arg)
options.binary_location = "/usr/bin/chromium"
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
driver.set_page_load_timeout(30)
try:
    driver.get(base + "/contact")
    driver.find_element(By.ID, "name").send_keys("Selma Browser")
    driver.find_element(By.ID, "email").send_keys("selma@browser.example.org")
    Select(driver.find_element(By.ID, "category")).select_by_value("issue")
    driver.find_element(By.ID, "subject").send_keys("Sent from a real browser")
    driver.find_element(By.ID, "message").send_keys("Typed into the contact page.")
    # A person takes more than the form's 3 seconds to type this; the
    # driver types in milliseconds, so the form's timestamp is set back
    # rather than the test sleeping.
    driver.execute_script(
        "document.querySelector('input[name=t]').value = String(Math.floor(Date.now()/1000) - 60)"
    )
    driver.find_element(By.CSS_SELECTOR, "#contact button[type=submit]").click()
    WebDriverWait(driver, 20).until(
        lambda d: d.find_element(By.ID, "result").get_attribute("class") in ("note", "problem")
    )
    print("contact:", driver.find_element(By.ID, "result").text)

    driver.get(page)
    driver.find_element(By.ID, "message").send_keys("Replied from the page in a browser.")
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "p.note"))
    print("page:", driver.find_element(By.CSS_SELECTOR, "p.note").text)
finally:
    driver.quit()
