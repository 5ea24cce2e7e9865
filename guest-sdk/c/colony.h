// Colony guest helpers for C: strings and a small JSON writer on top of the bindings
// that wit-bindgen's C generator makes from wit/ (agent.h). Header-only.
#ifndef COLONY_H
#define COLONY_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

// A borrowed view of a C string as a WIT string (not freed by anyone).
static inline agent_string_t colony_str(const char *s) {
  agent_string_t out = {(uint8_t *)s, strlen(s)};
  return out;
}

// A growable buffer for building JSON text.
typedef struct {
  char *data;
  size_t len, cap;
} colony_buf_t;

static inline void colony_buf_push(colony_buf_t *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    b->cap = (b->len + n + 1) * 2;
    b->data = realloc(b->data, b->cap);
  }
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = 0;
}

static inline void colony_buf_printf(colony_buf_t *b, const char *fmt, ...) {
  char small[256];
  va_list args;
  va_start(args, fmt);
  int n = vsnprintf(small, sizeof small, fmt, args);
  va_end(args);
  colony_buf_push(b, small, (size_t)n < sizeof small ? (size_t)n : sizeof small - 1);
}

// Appends `s` (length `n`, not NUL-terminated: WIT strings are not) as a JSON string.
static inline void colony_buf_json_string(colony_buf_t *b, const uint8_t *s, size_t n) {
  colony_buf_push(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    char c = (char)s[i];
    if (c == '"' || c == '\\') {
      char esc[2] = {'\\', c};
      colony_buf_push(b, esc, 2);
    } else if ((unsigned char)c < 0x20) {
      colony_buf_printf(b, "\\u%04x", c);
    } else {
      colony_buf_push(b, &c, 1);
    }
  }
  colony_buf_push(b, "\"", 1);
}

// The buffer as a WIT string owned by the canonical ABI (for export results).
static inline agent_string_t colony_buf_take(colony_buf_t *b) {
  agent_string_t out = {(uint8_t *)b->data, b->len};
  b->data = NULL;
  b->len = b->cap = 0;
  return out;
}

// Whether the JSON text `s` (length `n`) has `"key": true`.
static inline bool colony_json_flag(const uint8_t *s, size_t n, const char *key) {
  char *text = strndup((const char *)s, n);
  char pattern[128];
  snprintf(pattern, sizeof pattern, "\"%s\"", key);
  char *at = strstr(text, pattern);
  bool yes = false;
  if (at) {
    at += strlen(pattern);
    while (*at == ' ' || *at == ':') at++;
    yes = strncmp(at, "true", 4) == 0;
  }
  free(text);
  return yes;
}

#endif
