#pragma once
// MPNet (MPNetModel, MPNetForMaskedLM; e.g. all-mpnet-base-v2) as an embedding model on the shared encoder
// runtime (models/encoder): BERT-style post-norm layers with separate q / k / v projections, absolute
// positions numbered RoBERTa-style from pad_token_id + 1, and one relative-position bias table
// (encoder.relative_attention_bias [buckets, heads]) shared by every layer: the score of query i and key j
// gets table[bucket(j - i), h]. Tensor names with prefix "" or "mpnet.".
#include "models/encoder/encoder_family.h"

namespace fathom::models::mpnet {

// The bucket of relative distance `relative` (key position - query position): half the buckets per
// direction (keys after the query in the upper half), exact below num_buckets / 4, logarithmic up to
// max_distance, the last bucket beyond (f32 logarithms).
int relative_bucket(int relative, int num_buckets, int max_distance = 128);

// The family on the shared encoder runtime: load with encoder::load_encoder_family, position limit with
// encoder::encoder_position_limit.
encoder::EncoderFamily mpnet_family();

}  // namespace fathom::models::mpnet
