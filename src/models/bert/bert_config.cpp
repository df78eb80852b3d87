#include "models/bert/bert_config.h"

#include "formats/json_file.h"
#include "models/encoder/family_checks.h"

namespace fathom::models::bert {

Result<BertConfig> parse_bert_config(const nlohmann::json& j, const std::filesystem::path& file, bool roberta) {
  using namespace formats;
  BertConfig c;
  c.roberta_positions = roberta;
  FATHOM_ASSIGN_OR_RETURN(auto type, json_string(j, "model_type", file));
  c.model_type = type.value_or(roberta ? "roberta" : "bert");
  FATHOM_ASSIGN_OR_RETURN(c.hidden_size, json_positive_int(j, "hidden_size", file));
  FATHOM_ASSIGN_OR_RETURN(c.num_layers, json_positive_int(j, "num_hidden_layers", file));
  FATHOM_ASSIGN_OR_RETURN(c.num_heads, json_positive_int(j, "num_attention_heads", file));
  FATHOM_ASSIGN_OR_RETURN(c.intermediate_size, json_positive_int(j, "intermediate_size", file));
  FATHOM_ASSIGN_OR_RETURN(c.vocab_size, json_positive_int(j, "vocab_size", file));
  FATHOM_ASSIGN_OR_RETURN(c.max_position_embeddings, json_positive_int(j, "max_position_embeddings", file));
  FATHOM_ASSIGN_OR_RETURN(auto types, json_int(j, "type_vocab_size", file));
  c.type_vocab_size = static_cast<int>(types.value_or(2));
  FATHOM_ASSIGN_OR_RETURN(auto pad, json_int(j, "pad_token_id", file));
  c.pad_token_id = static_cast<int>(pad.value_or(roberta ? 1 : 0));
  FATHOM_ASSIGN_OR_RETURN(auto eps, json_number(j, "layer_norm_eps", file));
  c.layer_norm_eps = static_cast<float>(eps.value_or(1e-12));
  if (c.hidden_size % c.num_heads != 0)
    return make_error(ErrorCode::kLoadFailed, file.string() + ": hidden_size " + std::to_string(c.hidden_size) +
                                                  " is not divisible by num_attention_heads " + std::to_string(c.num_heads));
  if (c.type_vocab_size < 0 || c.pad_token_id < 0)
    return make_error(ErrorCode::kLoadFailed, file.string() + ": type_vocab_size and pad_token_id must be >= 0");
  if (c.position_limit() < 1)
    return make_error(ErrorCode::kLoadFailed, file.string() + ": max_position_embeddings " +
                                                  std::to_string(c.max_position_embeddings) + " leaves no positions after the offset " +
                                                  std::to_string(c.position_offset()));
  FATHOM_ASSIGN_OR_RETURN(auto act, json_string(j, "hidden_act", file));
  FATHOM_ASSIGN_OR_RETURN(c.gelu, encoder::parse_gelu_mode(act.value_or("gelu"), "hidden_act", file));
  FATHOM_ASSIGN_OR_RETURN(auto pos_type, json_string(j, "position_embedding_type", file));
  if (pos_type && *pos_type != "absolute")
    return make_error(ErrorCode::kUnsupported,
                      file.string() + ": position_embedding_type '" + *pos_type + "' is not supported (supported: absolute)");
  FATHOM_ASSIGN_OR_RETURN(auto is_decoder, json_bool(j, "is_decoder", file));
  if (is_decoder.value_or(false))
    return make_error(ErrorCode::kUnsupported, file.string() + ": is_decoder = true (causal BERT) is not supported");
  FATHOM_ASSIGN_OR_RETURN(c.matryoshka, parse_matryoshka(j, file, c.hidden_size));
  return c;
}

}  // namespace fathom::models::bert
