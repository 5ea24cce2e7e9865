// Colony ephemeral worker in C: reads its task, emits a progress event, reads its seeded
// conversation, takes injected messages and reports to its parent.
// Input: {"wait": true} to wait for one injected message, {"fail": true} to fail.
#include "../../../guest-sdk/c/colony.h"

bool exports_agent_run(agent_run_context_t *ctx, agent_json_t *ret, agent_string_t *err) {
  agent_string_t type = colony_str("progress");
  agent_string_t progress = colony_str("{\"step\": \"start\", \"language\": \"c\"}");
  agent_string_t emit_err;
  colony_agent_events_emit(&type, &progress, &emit_err);

  colony_buf_t data = {0};
  colony_buf_printf(&data, "{\"language\": \"c\", \"seeded\": [");
  // The conversation comes in pages: follow `next` until there is none.
  colony_agent_conversation_page_t page;
  agent_string_t read_err;
  uint64_t start = 0;
  size_t seeded = 0;
  bool more = true;
  while (more && colony_agent_conversation_read(start, 0, &page, &read_err)) {
    for (size_t i = 0; i < page.parts.len; i++, seeded++) {
      if (seeded) colony_buf_push(&data, ", ", 2);
      colony_buf_json_string(&data, page.parts.ptr[i].content.ptr, page.parts.ptr[i].content.len);
    }
    more = page.next.is_some;
    start = page.next.val;
    colony_agent_conversation_page_free(&page);
  }
  colony_buf_printf(&data, "], \"injected\": [");
  size_t heard = 0;
  if (colony_json_flag(ctx->input.ptr, ctx->input.len, "wait")) {
    agent_string_t message;
    if (colony_agent_inbox_wait(30000, &message)) {
      colony_buf_json_string(&data, message.ptr, message.len);
      agent_string_free(&message);
      heard++;
    }
  }
  agent_list_string_t drained;
  colony_agent_inbox_drain(&drained);
  for (size_t i = 0; i < drained.len; i++, heard++) {
    if (heard) colony_buf_push(&data, ", ", 2);
    colony_buf_json_string(&data, drained.ptr[i].ptr, drained.ptr[i].len);
  }
  agent_list_string_free(&drained);
  colony_buf_printf(&data, "]}");

  colony_buf_t line = {0};
  colony_buf_printf(&line, "c worker heard %zu messages", heard);
  agent_string_t log_line = colony_str(line.data);
  colony_agent_events_log(COLONY_AGENT_TYPES_LOG_LEVEL_INFO, &log_line);
  free(line.data);

  colony_buf_t task = {0};
  colony_buf_push(&task, (const char *)ctx->task.ptr, ctx->task.len);
  if (colony_json_flag(ctx->input.ptr, ctx->input.len, "fail")) {
    colony_buf_t message = {0};
    colony_buf_printf(&message, "failing on purpose: ");
    colony_buf_push(&message, task.data ? task.data : "", task.len);
    *err = colony_buf_take(&message);
    free(task.data);
    free(data.data);
    agent_run_context_free(ctx);
    return false;
  }
  colony_buf_t summary = {0};
  colony_buf_printf(&summary, "c did: ");
  colony_buf_push(&summary, task.data ? task.data : "", task.len);
  agent_string_t summary_str = colony_str(summary.data);
  agent_string_t data_str = colony_str(data.data);
  agent_string_t report_err;
  colony_agent_report_report_to_parent(COLONY_AGENT_TYPES_REPORT_STATUS_SUCCESS, &summary_str, &data_str, &report_err);
  free(summary.data);
  free(data.data);

  colony_buf_t out = {0};
  colony_buf_printf(&out, "{\"language\": \"c\", \"task\": ");
  colony_buf_json_string(&out, (const uint8_t *)(task.data ? task.data : ""), task.len);
  colony_buf_printf(&out, "}");
  *ret = colony_buf_take(&out);
  free(task.data);
  agent_run_context_free(ctx);
  return true;
}

bool exports_agent_on_message(agent_string_t *message, agent_json_t *ret, agent_string_t *err) {
  agent_string_free(message);
  colony_buf_t text = {0};
  colony_buf_printf(&text, "this worker takes no messages");
  *err = colony_buf_take(&text);
  return false;
}
