#include "data/speech_synthesizer.h"

#include <espeak-ng/speak_lib.h>
#include <fcntl.h>
#include <flite/flite.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "data/audio.h"

extern "C" {
// libflite_usenglish, libflite_cmulex: the language and lexicon the English voices look up by name.
void usenglish_init(cst_voice* v);
cst_lexicon* cmu_lex_init();
// libflite_cmu_us_*: each voice library registers its one voice (flite's own main declares them so too).
cst_voice* register_cmu_us_kal16(const char* voxdir);
cst_voice* register_cmu_us_awb(const char* voxdir);
cst_voice* register_cmu_us_rms(const char* voxdir);
cst_voice* register_cmu_us_slt(const char* voxdir);
}

extern char** environ;

namespace vtb::data {
namespace {

std::vector<short>* g_sink = nullptr;  // espeak-ng's callback has no user pointer for our buffer

int collect(short* wav, int samples, espeak_EVENT*) {
  if (wav != nullptr && samples > 0 && g_sink != nullptr) g_sink->insert(g_sink->end(), wav, wav + samples);
  return 0;
}

std::vector<float> to_float(const short* pcm, size_t n) {
  std::vector<float> samples(n);
  for (size_t i = 0; i < n; ++i) samples[i] = pcm[i] / 32768.0f;
  return samples;
}

std::string after_colon(const std::string& name) { return name.substr(name.find(':') + 1); }

}  // namespace

const std::vector<std::string>& synthesis_engines() {
  static const std::vector<std::string> engines{"espeak-ng", "flite", "festival"};
  return engines;
}

std::string engine_of(const std::string& voice_name) {
  for (const char* engine : {"flite", "festival"})
    if (voice_name.rfind(std::string(engine) + ":", 0) == 0) return engine;
  return "espeak-ng";
}

const std::vector<std::string>& training_voice_names(const std::string& engine) {
  static const std::map<std::string, std::vector<std::string>> names{
      {"espeak-ng", {"en-us+m1", "en-us+f2", "en+m3", "en-us+m4", "en-gb-x-rp+f3"}},
      // kal16: diphones; rms, slt: clustergen (statistical parametric).
      {"flite", {"flite:kal16", "flite:rms", "flite:slt"}},
      // kal: diphones (festvox-kallpc16k); slt: HTS (festvox-us-slt-hts).
      {"festival", {"festival:kal_diphone", "festival:cmu_us_slt_arctic_hts"}}};
  const auto it = names.find(engine);
  if (it == names.end()) throw std::invalid_argument("no synthesis engine '" + engine + "'");
  return it->second;
}

const std::string& held_out_voice_name(const std::string& engine) {
  static const std::map<std::string, std::string> names{
      {"espeak-ng", "en-gb-scotland+f4"}, {"flite", "flite:awb"}, {"festival", "festival:ked_diphone"}};
  const auto it = names.find(engine);
  if (it == names.end()) throw std::invalid_argument("no synthesis engine '" + engine + "'");
  return it->second;
}

std::vector<std::string> training_voice_names(const std::vector<std::string>& engines) {
  std::vector<std::string> out;
  for (const auto& engine : engines) {
    const auto& names = training_voice_names(engine);
    out.insert(out.end(), names.begin(), names.end());
  }
  return out;
}

std::string engine_missing(const std::string& engine) {
  if (engine != "festival") return "";
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "");
  for (std::string dir; std::getline(dirs, dir, ':');)
    if (!dir.empty() && access((std::filesystem::path(dir) / "festival").c_str(), X_OK) == 0) return "";
  return "no festival on PATH (apt-get install festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts)";
}

std::vector<std::string> parse_engines(const std::string& list, const std::string& flag) {
  std::vector<std::string> out;
  std::istringstream in(list);
  for (std::string e; std::getline(in, e, ',');) {
    bool known = false;
    for (const auto& k : synthesis_engines()) known |= e == k;
    if (!known)
      throw std::invalid_argument(flag + ": no synthesis engine '" + e + "' (there are espeak-ng, flite, festival)");
    for (const auto& o : out)
      if (o == e) throw std::invalid_argument(flag + ": '" + e + "' named twice");
    out.push_back(e);
  }
  if (out.empty()) throw std::invalid_argument(flag + ": name at least one engine (espeak-ng, flite, festival)");
  return out;
}

// espeak-ng is initialised once per process and never terminated: its state is global, and after
// espeak_Terminate a second espeak_Initialize hangs the next synthesis in espeak_Synchronize (seen here with
// espeak-ng 1.51). Synthesis takes a process-wide lock, so several SpeechSynthesizers may exist. Its wave
// generator keeps state from one utterance to the next (seeding rand() does not reset it), so the same text,
// voice, rate and pitch give the same samples only at the same place in a process's sequence: a corpus is
// reproducible from a fresh process (`vtb data synth`), not when made twice in one.
struct SpeechSynthesizer::Espeak {
  static std::mutex& lock() {
    static std::mutex m;
    return m;
  }
  static int native_rate() {
    static const int rate = [] {
      const int r = espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, nullptr, 0);
      if (r <= 0) throw std::runtime_error("espeak-ng failed to initialise (is espeak-ng-data installed?)");
      espeak_SetSynthCallback(collect);
      return r;
    }();
    return rate;
  }
  std::vector<float> speak(const std::string& text, const Voice& voice) {
    std::lock_guard<std::mutex> hold(lock());
    const int rate = native_rate();
    if (espeak_SetVoiceByName(voice.name.c_str()) != EE_OK)
      throw std::runtime_error("espeak-ng: unknown voice '" + voice.name + "'");
    espeak_SetParameter(espeakRATE, voice.rate, 0);
    espeak_SetParameter(espeakPITCH, voice.pitch, 0);
    std::vector<short> pcm;
    g_sink = &pcm;
    const espeak_ERROR err =
        espeak_Synth(text.c_str(), text.size() + 1, 0, POS_CHARACTER, 0, espeakCHARS_UTF8, nullptr, nullptr);
    espeak_Synchronize();
    g_sink = nullptr;
    if (err != EE_OK) throw std::runtime_error("espeak-ng could not speak '" + text + "'");
    if (pcm.empty()) throw std::runtime_error("espeak-ng produced no audio for '" + text + "'");
    return resample(to_float(pcm.data(), pcm.size()), rate, kSampleRate);
  }
};

// flite's voices are the process's too: each register_cmu_us_* returns the one voice its library keeps, so
// they are registered once, kept for the life of the process (deleting one would leave the library holding
// a freed voice), and synthesis takes a process-wide lock (the calls set features on the shared voice).
struct SpeechSynthesizer::Flite {
  struct Registered {
    cst_voice* voice;
    float f0_mean;  // the voice's own mean F0, which `pitch` scales
  };
  static std::mutex& lock() {
    static std::mutex m;
    return m;
  }
  static Registered& registered(const std::string& name) {  // under lock()
    static std::map<std::string, Registered> voices;
    static const bool languages = [] {
      // As flite's own main does (flite_set_lang_list): without the languages a voice gets no text processing.
      flite_init();
      flite_add_lang("eng", usenglish_init, cmu_lex_init);
      flite_add_lang("usenglish", usenglish_init, cmu_lex_init);
      return true;
    }();
    (void)languages;
    auto it = voices.find(name);
    if (it == voices.end()) {
      static const std::map<std::string, cst_voice* (*)(const char*)> kRegister{{"kal16", register_cmu_us_kal16},
                                                                                {"awb", register_cmu_us_awb},
                                                                                {"rms", register_cmu_us_rms},
                                                                                {"slt", register_cmu_us_slt}};
      const auto r = kRegister.find(after_colon(name));
      if (r == kRegister.end())
        throw std::runtime_error("flite: unknown voice '" + name + "' (vtb links kal16, awb, rms, slt)");
      cst_voice* v = r->second(nullptr);
      if (v == nullptr) throw std::runtime_error("flite: voice '" + name + "' did not register");
      it = voices.emplace(name, Registered{v, get_param_float(v->features, "int_f0_target_mean", 100)}).first;
    }
    return it->second;
  }
  std::vector<float> speak(const std::string& text, const Voice& voice) {
    std::lock_guard<std::mutex> hold(lock());
    const Registered& r = registered(voice.name);
    cst_voice* v = r.voice;
    feat_set_float(v->features, "duration_stretch", 175.0f / static_cast<float>(voice.rate));
    feat_set_float(v->features, "int_f0_target_mean", r.f0_mean * (1 + (voice.pitch - 50) / 100.0f));
    cst_wave* w = flite_text_to_wave(text.c_str(), v);
    if (w == nullptr) throw std::runtime_error("flite could not speak '" + text + "' with " + voice.name);
    std::vector<float> samples = to_float(w->samples, static_cast<size_t>(w->num_samples) * w->num_channels);
    const int rate = w->sample_rate, channels = w->num_channels;
    delete_wave(w);
    if (channels != 1)
      throw std::runtime_error("flite: " + voice.name + " gave " + std::to_string(channels) + " channels");
    return resample(samples, rate, kSampleRate);
  }
};

// Festival as one long-lived `festival --pipe` process: per utterance one Scheme form that selects the
// voice, synthesises into a file of our temporary folder and prints "ok", then "end" whatever happened (an
// error aborts the form before its "ok"); `(fflush nil)` pushes both through the pipe. Starting festival
// per utterance would cost 0.4–1.6 s each (measured with text2wave), a warm process 10–200 ms.
struct SpeechSynthesizer::Festival {
  pid_t pid = -1;
  int to = -1, from = -1;
  std::filesystem::path dir;
  std::string buffered;
  struct sigaction old_pipe_action {};

  Festival() {
    char pattern[] = "/tmp/vtb-festival-XXXXXX";
    if (mkdtemp(pattern) == nullptr) throw std::runtime_error("festival: cannot make a temporary folder");
    dir = pattern;
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) throw std::runtime_error("festival: pipe failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_addopen(&actions, 2, (dir / "stderr.txt").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    for (int fd : {in[0], in[1], out[0], out[1]}) posix_spawn_file_actions_addclose(&actions, fd);
    char arg0[] = "festival", arg1[] = "--pipe";
    char* argv[] = {arg0, arg1, nullptr};
    const int err = posix_spawnp(&pid, "festival", &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    close(in[0]);
    close(out[1]);
    to = in[1];
    from = out[0];
    if (err != 0) {
      close(to);
      close(from);
      std::filesystem::remove_all(dir);
      throw std::runtime_error(std::string("festival could not start (apt-get install festival): ") + strerror(err));
    }
    // A festival that died must give an error here, not kill vtb with SIGPIPE.
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ignore, &old_pipe_action);
  }

  ~Festival() {
    close(to);
    close(from);
    int status = 0;
    waitpid(pid, &status, 0);
    sigaction(SIGPIPE, &old_pipe_action, nullptr);
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }

  std::string stderr_tail() const {
    std::ifstream in(dir / "stderr.txt");
    std::stringstream s;
    s << in.rdbuf();
    std::string text = s.str();
    return text.size() > 400 ? text.substr(text.size() - 400) : text;
  }

  // The next line festival prints; throws when it exits or says nothing for 120 s.
  std::string read_line() {
    for (;;) {
      const size_t newline = buffered.find('\n');
      if (newline != std::string::npos) {
        std::string line = buffered.substr(0, newline);
        buffered.erase(0, newline + 1);
        return line;
      }
      pollfd p{from, POLLIN, 0};
      if (poll(&p, 1, 120'000) <= 0) throw std::runtime_error("festival: no answer for 120 s");
      char chunk[4096];
      const ssize_t n = read(from, chunk, sizeof chunk);
      if (n <= 0) throw std::runtime_error("festival exited: " + stderr_tail());
      buffered.append(chunk, static_cast<size_t>(n));
    }
  }

  std::vector<float> speak(const std::string& text, const Voice& voice) {
    std::string quoted;
    for (char c : text) {
      if (c == '\\' || c == '"') quoted += '\\';
      quoted += c == '\n' ? ' ' : c;
    }
    const std::filesystem::path wav = dir / "utterance.wav";
    std::filesystem::remove(wav);
    // Diphone voices stretch durations by Duration_Stretch; HTS voices ignore it and take hts_engine's own
    // options instead (-r: speed, -fm: pitch shift in half-tones), which selecting the voice resets.
    const std::string name = after_colon(voice.name);
    const bool hts = name.ends_with("_hts");
    std::ostringstream form;
    form << "(begin (voice_" << name << ") (Parameter.set 'Duration_Stretch " << (hts ? 1.0 : 175.0 / voice.rate)
         << ") ";
    if (hts)
      form << "(set! hts_engine_params (append hts_engine_params (list (list \"-r\" " << voice.rate / 175.0
           << ") (list \"-fm\" " << (voice.pitch - 50) / 10.0 << ")))) ";
    form << "(utt.save.wave (utt.synth (Utterance Text \"" << quoted << "\")) \"" << wav.string()
         << "\" 'riff) (format t \"ok\\n\")) (format t \"end\\n\") (fflush nil)\n";
    const std::string s = form.str();
    if (write(to, s.data(), s.size()) != static_cast<ssize_t>(s.size()))
      throw std::runtime_error("festival exited: " + stderr_tail());
    bool ok = false;
    for (std::string line; (line = read_line()) != "end";) ok |= line == "ok";
    if (!ok || !std::filesystem::exists(wav))
      throw std::runtime_error("festival could not speak '" + text + "' with " + voice.name + ": " + stderr_tail());
    return load_audio(wav.string());
  }
};

SpeechSynthesizer::SpeechSynthesizer() = default;
SpeechSynthesizer::~SpeechSynthesizer() = default;

std::vector<float> SpeechSynthesizer::speak(const std::string& text, const Voice& voice) {
  const std::string engine = engine_of(voice.name);
  std::vector<float> samples;
  if (engine == "flite") {
    if (!flite_) flite_ = std::make_unique<Flite>();
    samples = flite_->speak(text, voice);
  } else if (engine == "festival") {
    if (!festival_) festival_ = std::make_unique<Festival>();
    samples = festival_->speak(text, voice);
  } else {
    if (!espeak_) espeak_ = std::make_unique<Espeak>();
    samples = espeak_->speak(text, voice);
  }
  if (samples.empty()) throw std::runtime_error(engine + " produced no audio for '" + text + "'");
  return samples;
}

}  // namespace vtb::data
