/* t_json.h — looking into JSON answers (jansson) in checks.
 *
 * Each takes the parsed body, NULL included (a body that was not JSON),
 * and returns NULL or 0 for what is not there. */
#ifndef TESTS_SUPPORT_T_JSON_H
#define TESTS_SUPPORT_T_JSON_H

#include <jansson.h>

/* String member |k| of object |j|, or NULL. */
const char *t_jstr(const json_t *j, const char *k);

/* String member |k2| of object member |k1| of |j|, or NULL. */
const char *t_jpath(const json_t *j, const char *k1, const char *k2);

/* 1 when |j| has the members of the gateway's error answers:
 * {"error": |code|, "message": "..."} (other members are not looked at). */
int t_json_is_error(const json_t *j, const char *code);

#endif
