// Colony persistent overseer in C: keeps state across turns (the turn count and the
// previous message live in globals, which persist for the instance's life).
#include "../../../guest-sdk/c/colony.h"

static unsigned long turns = 0;
static char *previous = NULL;
static size_t previous_len = 0;

bool exports_agent_run(agent_run_context_t *ctx, agent_json_t *ret, agent_string_t *err) {
  agent_run_context_free(ctx);
  colony_buf_t out = {0};
  colony_buf_printf(&out, "{\"ready\": true, \"language\": \"c\"}");
  *ret = colony_buf_take(&out);
  return true;
}

bool exports_agent_on_message(agent_string_t *message, agent_json_t *ret, agent_string_t *err) {
  turns++;
  colony_buf_t out = {0};
  colony_buf_printf(&out, "{\"turn\": %lu, \"heard\": ", turns);
  colony_buf_json_string(&out, message->ptr, message->len);
  colony_buf_printf(&out, ", \"previous\": ");
  if (previous) {
    colony_buf_json_string(&out, (const uint8_t *)previous, previous_len);
  } else {
    colony_buf_printf(&out, "null");
  }
  colony_buf_printf(&out, ", \"language\": \"c\"}");
  free(previous);
  previous = malloc(message->len + 1);
  memcpy(previous, message->ptr, message->len);
  previous_len = message->len;
  agent_string_free(message);
  *ret = colony_buf_take(&out);
  return true;
}
